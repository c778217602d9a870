# syntax=docker/dockerfile:1
# The operator and graph-sim as static binaries on distroless: no shell, no libc, no root.
#   docker build -t teams-app-operator .
#   docker run --rm teams-app-operator --help
#   docker run --rm -p 8080:8080 --entrypoint /usr/local/bin/graph-sim teams-app-operator --listen 0.0.0.0:8080
#
# The runtime stage (the last one) is what the in-cluster tests run, built by `scripts/cluster` on
# machines that reach no image registry: it passes BASE_IMAGE (a local image holding the same runtime
# files as distroless static:nonroot) and BINARIES=prebuilt (static binaries compiled on the host,
# in the context's prebuilt/ folder) instead of compiling in the rust image. README: "The image".

# The runtime base. Production: distroless static, nonroot variant.
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot
# Where the binaries come from: `build` (compiled below, the production build) or `prebuilt`.
ARG BINARIES=build

FROM rust:1.95-bookworm AS build
# musl-gcc compiles ring's C and assembly parts for the musl target.
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target directory between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-musl" \
    && export "CC_$(echo "$target" | tr - _)=musl-gcc" CARGO_PROFILE_RELEASE_STRIP=true \
    && cargo build --release --locked --target "$target" \
        -p teams-app-operator -p graph-sim --bin teams-app-operator --bin graph-sim \
    && mkdir -p /out \
    && cp "target/$target/release/teams-app-operator" "target/$target/release/graph-sim" /out/

# Static binaries built outside (scripts/cluster puts them in the context's prebuilt/ folder).
FROM scratch AS prebuilt
COPY prebuilt/teams-app-operator prebuilt/graph-sim /out/

FROM ${BINARIES} AS binaries

FROM ${BASE_IMAGE}
COPY --from=binaries /out/teams-app-operator /out/graph-sim /usr/local/bin/
USER 65532:65532
# /metrics, /livez, /readyz
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/teams-app-operator"]
