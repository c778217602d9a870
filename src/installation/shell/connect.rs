//! A reconcile's first step: the Graph client of the resource's connection, or why it has none.

use kube::ResourceExt;

use crate::api::TeamsAppInstallation;
use crate::tenancy::{Asking, Refused};

use super::context::{Connected, Context};

/// The Graph client of the resource's connection, or why it has none. Decided from the caches
/// alone: a refusal costs no Graph call.
pub(super) fn connect<'a>(
    ctx: &'a Context,
    obj: &TeamsAppInstallation,
) -> Result<Connected<'a>, Refused> {
    let namespace = obj.namespace().unwrap_or_default();
    let resolved = ctx.connections.resolve(&Asking {
        namespace: &namespace,
        connection_ref: obj.spec.connection_ref.as_ref(),
        app: &obj.spec.app,
        groups: &[],
    })?;
    if let Some(moved) = tenant_moved(obj, resolved.client.tenant_id()) {
        return Err(Refused::NotAllowed(moved));
    }
    Ok(Connected {
        ctx,
        graph: resolved.client,
        connection: resolved.connection,
    })
}

/// The resource's app was installed in one tenant and its connection now reaches another:
/// moving a resource between tenants is delete + create. Only tenant ids in their GUID form are
/// compared (a domain and a GUID may name the same tenant).
fn tenant_moved(obj: &TeamsAppInstallation, now: &str) -> Option<String> {
    let before = obj.status.as_ref()?.tenant_id.as_deref()?;
    let is_guid = |t: &str| uuid::Uuid::parse_str(t).is_ok();
    (is_guid(before) && is_guid(now) && !before.eq_ignore_ascii_case(now)).then(|| {
        format!(
            "this resource works in tenant {before} and its connection now reaches tenant {now}: moving a resource to another tenant is delete + create"
        )
    })
}
