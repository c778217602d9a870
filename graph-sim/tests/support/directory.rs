//! Directory reads as a client makes them: the members path, `ConsistencyLevel: eventual`,
//! following `@odata.nextLink`, and tokens for clients with chosen roles.

use reqwest::Method;
use serde_json::{Value, json};

use super::{GRAPH_SCOPE, Reply, Sim, TENANT, read};

pub const TEAMS_PLAN: &str = "57ff2da0-773e-42df-b2af-ffb7a2317929";
pub const SALES: &str = "99999999-9999-9999-9999-999999999991";
pub const LEADS: &str = "99999999-9999-9999-9999-999999999992";

pub fn members_path(group: &str) -> String {
    format!("/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user")
}

/// The members path as an advanced query asks for it: with `$count=true`.
pub fn counted(group: &str) -> String {
    format!("{}?$count=true", members_path(group))
}

/// A GET with `ConsistencyLevel: eventual` when `eventual`; `path` may be a whole nextLink.
pub async fn directory_get(sim: &Sim, path: &str, token: &str, eventual: bool) -> Reply {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        sim.url(path)
    };
    let mut request = sim.http.get(url).bearer_auth(token);
    if eventual {
        request = request.header("ConsistencyLevel", "eventual");
    }
    read(request.send().await.unwrap()).await
}

/// Follows `@odata.nextLink` from `first` to the end; every page's body.
pub async fn all_pages(sim: &Sim, first: &str, token: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(link) = next {
        let reply = directory_get(sim, &link, token, true).await;
        assert_eq!(reply.status, 200, "{link}: {}", reply.body);
        next = reply.body["@odata.nextLink"].as_str().map(str::to_string);
        pages.push(reply.body);
        assert!(pages.len() < 1000, "paging must end");
    }
    pages
}

/// A token for a new client `id` granted exactly `roles`.
pub async fn token_with_roles(sim: &Sim, id: &str, roles: Value) -> String {
    let added = sim
        .admin(
            Method::POST,
            &format!("/tenants/{TENANT}/clients"),
            Some(json!({"id": id, "secret": "s", "roles": roles})),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", "s"),
        ("scope", GRAPH_SCOPE),
    ];
    let reply = sim.token_form(TENANT, &form).await;
    reply.body["access_token"].as_str().unwrap().to_string()
}
