//! Directory reads for rollouts: a group's transitive user members, and one user.
//!
//! The properties asked for are exactly what eligibility needs. Graph returns them only with
//! `User.Read.All` (or broader); with `GroupMember.Read.All` alone, members come back with their
//! id and every other property `null` — which must read as "permission missing", never as
//! "disabled" or "unlicensed", so the properties stay `Option`s here.

use reqwest::Method;
use serde::Deserialize;

use super::budget::CallClass;
use super::client::{Call, GraphClient, Target, decode};
use super::error::GraphError;
use super::metrics::Operation;
use super::models::Page;
use super::odata::Route;

/// The Microsoft Teams service plan ("TEAMS1") in a user's `assignedPlans`.
pub const TEAMS_SERVICE_PLAN_ID: &str = "57ff2da0-773e-42df-b2af-ffb7a2317929";

/// The properties a rollout reads for each user.
const USER_SELECT: &str = "id,userPrincipalName,accountEnabled,userType,assignedPlans";

/// Graph's largest page for directory lists.
const PAGE_SIZE: &str = "999";

/// A large group is many pages; a server that keeps handing out next links is a bug.
const MAX_PAGES: usize = 10_000;

/// A user as the directory describes it, kept small: a tenant's users carry dozens of assigned
/// plans each, and a rollout of a 20,000-member group holds one of these per member. Each
/// property is `None` where Graph returned no value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(default, deserialize_with = "guest")]
    #[serde(rename = "userType")]
    pub is_guest: Option<bool>,
    /// Whether `assignedPlans` holds the Teams service plan, enabled.
    #[serde(default, deserialize_with = "teams_plan")]
    #[serde(rename = "assignedPlans")]
    pub teams_licensed: Option<bool>,
}

/// One service plan assigned to a user through a licence (only read while decoding).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignedPlan {
    #[serde(default)]
    service_plan_id: Option<String>,
    #[serde(default)]
    capability_status: Option<String>,
}

fn teams_plan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let plans: Option<Vec<AssignedPlan>> = Option::deserialize(d)?;
    Ok(plans.map(|plans| {
        plans.iter().any(|p| {
            p.service_plan_id
                .as_deref()
                .is_some_and(|id| id.eq_ignore_ascii_case(TEAMS_SERVICE_PLAN_ID))
                && p.capability_status.as_deref() == Some("Enabled")
        })
    }))
}

fn guest<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let user_type: Option<String> = Option::deserialize(d)?;
    Ok(user_type.map(|t| t.eq_ignore_ascii_case("Guest")))
}

impl DirectoryUser {
    /// Graph returned the user without any of the properties asked for: the app lacks
    /// `User.Read.All`.
    pub fn lacks_properties(&self) -> bool {
        self.user_principal_name.is_none()
            && self.account_enabled.is_none()
            && self.is_guest.is_none()
            && self.teams_licensed.is_none()
    }
}

fn group_members_route(group_id: &str) -> Route {
    Route::new()
        .lit("groups")
        .seg(group_id)
        .lit("transitiveMembers")
        .lit("microsoft.graph.user")
        .query("$select", USER_SELECT)
        .query("$top", PAGE_SIZE)
        .query("$count", "true")
}

fn user_route(user: &str) -> Route {
    Route::new().user(user).query("$select", USER_SELECT)
}

impl GraphClient {
    /// Every user in the group, nested groups included (each once), following every
    /// `@odata.nextLink`. The cast to users is an advanced directory query: each page needs
    /// `ConsistencyLevel: eventual`.
    pub async fn group_user_members(
        &self,
        group_id: &str,
    ) -> Result<Vec<DirectoryUser>, GraphError> {
        let mut members = Vec::new();
        let mut target = Target::Route(group_members_route(group_id));
        for _ in 0..MAX_PAGES {
            let reply = self
                .send(Call {
                    op: Operation::GroupMembers,
                    method: Method::GET,
                    target,
                    body: None,
                    class: Some(CallClass::DirectoryRead),
                    retry_transient_400: false,
                    eventual_consistency: true,
                })
                .await?;
            let page: Page<DirectoryUser> = decode(&reply, "GET")?;
            members.extend(page.value);
            match page.next_link {
                Some(link) => target = Target::NextLink(link),
                None => return Ok(members),
            }
        }
        Err(GraphError::Decode {
            method: "GET".into(),
            path: group_members_route(group_id).path().to_string(),
            status: 200,
            request_id: None,
            message: "a group's member list kept paging past the limit".into(),
        })
    }

    /// One user by object id or user principal name; `None` when the directory has no such
    /// user.
    pub async fn directory_user(&self, user: &str) -> Result<Option<DirectoryUser>, GraphError> {
        let found = self
            .get_json(
                Operation::DirectoryUser,
                CallClass::DirectoryRead,
                Target::Route(user_route(user)),
            )
            .await;
        match found {
            Ok(user) => Ok(Some(user)),
            Err(err) if err.status() == Some(404) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_list_asks_for_users_only_with_the_eligibility_properties() {
        assert_eq!(
            group_members_route("44444444-4444-4444-4444-444444444444").relative(),
            "/groups/44444444-4444-4444-4444-444444444444/transitiveMembers/microsoft.graph.user\
             ?$select=id,userPrincipalName,accountEnabled,userType,assignedPlans&$top=999&$count=true"
        );
    }

    #[test]
    fn licence_and_missing_properties_are_told_apart() {
        let user: DirectoryUser = serde_json::from_value(serde_json::json!({
            "id": "u1", "userPrincipalName": "a@b.c", "accountEnabled": true, "userType": "Member",
            "assignedPlans": [
                {"servicePlanId": "efb87545-963c-4e0d-99df-69c6916d9eb0", "capabilityStatus": "Enabled"},
                {"servicePlanId": TEAMS_SERVICE_PLAN_ID, "capabilityStatus": "Enabled"}
            ]
        }))
        .unwrap();
        assert_eq!(user.teams_licensed, Some(true));
        assert_eq!(user.is_guest, Some(false));
        assert!(!user.lacks_properties());

        let suspended: DirectoryUser = serde_json::from_value(serde_json::json!({
            "id": "u2", "assignedPlans": [
                {"servicePlanId": TEAMS_SERVICE_PLAN_ID, "capabilityStatus": "Suspended"}
            ]
        }))
        .unwrap();
        assert_eq!(suspended.teams_licensed, Some(false));

        let bare: DirectoryUser = serde_json::from_value(serde_json::json!({
            "id": "u3", "userPrincipalName": null, "accountEnabled": null, "userType": null,
            "assignedPlans": null
        }))
        .unwrap();
        assert!(bare.lacks_properties());
        assert_eq!(bare.teams_licensed, None);
    }
}
