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
use super::licence::{Licence, teams_licence};
use super::metrics::Operation;
use super::models::Page;
use super::odata::Route;

/// The properties a rollout reads for each user.
const USER_SELECT: &str = "id,userPrincipalName,accountEnabled,userType,assignedPlans";

/// Graph's largest page for directory lists.
const PAGE_SIZE: &str = "999";

/// A large group is many pages; a server that keeps handing out next links is a bug.
const MAX_PAGES: usize = 10_000;

/// Graph's answer (400) to a next link whose page token expired while a large group was being
/// read: the read must start over from the first page.
const EXPIRED_PAGE_TOKEN: &str = "Directory_ExpiredPageToken";

/// How many times one member read starts over after an expired page token before it reports
/// the failure (each restart re-reads every page, so a group that cannot be read within the
/// token's lifetime must not loop).
const MAX_RESTARTS: usize = 3;

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
    /// The Teams licence `assignedPlans` give (see [`teams_licence`]).
    #[serde(default, deserialize_with = "licence")]
    #[serde(rename = "assignedPlans")]
    pub licence: Option<Licence>,
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

fn licence<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Licence>, D::Error> {
    let plans: Option<Vec<AssignedPlan>> = Option::deserialize(d)?;
    Ok(plans.map(|plans| {
        teams_licence(plans.iter().map(|p| {
            (
                p.service_plan_id.as_deref().unwrap_or_default(),
                p.capability_status.as_deref().unwrap_or_default(),
            )
        }))
    }))
}

fn guest<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let user_type: Option<String> = Option::deserialize(d)?;
    Ok(user_type.map(|t| t.eq_ignore_ascii_case("Guest")))
}

impl DirectoryUser {
    /// Graph returned the user without the properties eligibility is judged by — all of
    /// `accountEnabled`, `userType` and `assignedPlans` null, whether or not the UPN came: the
    /// app has `User.ReadBasic.All` (UPN and name only) or no user permission, not
    /// `User.Read.All`. With `User.Read.All` every user has `accountEnabled` and `userType`.
    pub fn lacks_properties(&self) -> bool {
        self.account_enabled.is_none() && self.is_guest.is_none() && self.licence.is_none()
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
    /// `ConsistencyLevel: eventual`. A next link that answers `Directory_ExpiredPageToken`
    /// starts the read over at once (a few times at most).
    pub async fn group_user_members(
        &self,
        group_id: &str,
    ) -> Result<Vec<DirectoryUser>, GraphError> {
        let mut restarts = 0;
        loop {
            match self.read_group_pages(group_id).await {
                Err(e) if e.code() == Some(EXPIRED_PAGE_TOKEN) && restarts < MAX_RESTARTS => {
                    restarts += 1;
                    tracing::info!(
                        group = group_id,
                        restarts,
                        "a page token expired mid-read; reading the group again from the start"
                    );
                }
                result => return result,
            }
        }
    }

    /// One pass over the group's pages.
    async fn read_group_pages(&self, group_id: &str) -> Result<Vec<DirectoryUser>, GraphError> {
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
                {"servicePlanId": "57ff2da0-773e-42df-b2af-ffb7a2317929", "capabilityStatus": "Enabled"}
            ]
        }))
        .unwrap();
        assert_eq!(user.licence, Some(Licence::Licensed));
        assert_eq!(user.is_guest, Some(false));
        assert!(!user.lacks_properties());

        let suspended: DirectoryUser = serde_json::from_value(serde_json::json!({
            "id": "u2", "assignedPlans": [
                {"servicePlanId": "57ff2da0-773e-42df-b2af-ffb7a2317929", "capabilityStatus": "Suspended"}
            ]
        }))
        .unwrap();
        assert_eq!(suspended.licence, Some(Licence::Unlicensed));

        let bare: DirectoryUser = serde_json::from_value(serde_json::json!({
            "id": "u3", "userPrincipalName": null, "accountEnabled": null, "userType": null,
            "assignedPlans": null
        }))
        .unwrap();
        assert!(bare.lacks_properties());
        assert_eq!(bare.licence, None);

        // User.ReadBasic.All: the UPN comes, the rest is null.
        let basic: DirectoryUser = serde_json::from_value(serde_json::json!({
            "id": "u4", "userPrincipalName": "d@b.c", "accountEnabled": null, "userType": null,
            "assignedPlans": null
        }))
        .unwrap();
        assert!(basic.lacks_properties());
    }
}
