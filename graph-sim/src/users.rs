//! The directory's users: who they are, their directory properties and their Teams licence, and
//! the admin operations that add and change them.

use super::plans::{self, Plan};
use super::seed::{UserPatch, UserSeed, UserType};
use super::state::{AdminError, Tenant};

#[derive(Clone)]
pub(crate) struct User {
    pub id: String,
    pub upn: String,
    pub display_name: Option<String>,
    /// `assignedPlans`, which also decide the Teams licence.
    pub plans: Vec<Plan>,
    /// Teams knows the user (else its calls for them are 404).
    pub teams_provisioned: bool,
    pub blocked_apps: Vec<String>,
    pub account_enabled: bool,
    pub user_type: UserType,
    /// Soft-deleted: in the deleted items, restorable with its memberships (which groups keep
    /// meanwhile; reads skip the user).
    pub deleted: bool,
}

impl Tenant {
    pub fn add_user(&mut self, seed: &UserSeed) -> Result<(), AdminError> {
        let (id, upn) = (&seed.id, &seed.user_principal_name);
        if self.user(id).is_some() || self.user(upn).is_some() {
            return Err(AdminError::Conflict(format!("user {id} / {upn} exists")));
        }
        // A group member is named by user id, UPN or group id: each name must mean one object.
        if let Some(group) = [id, upn].into_iter().find(|k| self.group(k).is_some()) {
            return Err(AdminError::Conflict(format!(
                "{group} is already a group's id"
            )));
        }
        if id.trim().is_empty() || upn.trim().is_empty() {
            return Err(AdminError::Invalid("a user needs an id and a UPN".into()));
        }
        let plans = match &seed.plans {
            Some(_) if !seed.teams_enabled => {
                return Err(AdminError::Invalid(format!(
                    "user {id}: give either teamsEnabled or plans, not both"
                )));
            }
            Some(seeds) => plans::from_seed(seeds)
                .map_err(|e| AdminError::Invalid(format!("user {id}: {e}")))?,
            None => plans::shorthand(seed.teams_enabled),
        };
        let position = self.users.len();
        self.user_index.insert(id.to_ascii_lowercase(), position);
        self.user_index.insert(upn.to_ascii_lowercase(), position);
        self.users.push(User {
            id: id.clone(),
            upn: upn.clone(),
            display_name: seed.display_name.clone(),
            plans,
            teams_provisioned: seed.teams_provisioned,
            blocked_apps: seed.blocked_apps.clone(),
            account_enabled: seed.account_enabled,
            user_type: seed.user_type,
            deleted: seed.deleted,
        });
        Ok(())
    }

    /// Changes a user's directory properties or licence (by object id or UPN).
    pub fn patch_user(&mut self, key: &str, patch: &UserPatch) -> Result<&User, AdminError> {
        let position = self
            .user_position(key)
            .ok_or_else(|| AdminError::NotFound(format!("user {key} not found")))?;
        let plans = match (&patch.plans, patch.teams_enabled) {
            (Some(_), Some(_)) => {
                return Err(AdminError::Invalid(
                    "give either teamsEnabled or plans, not both".into(),
                ));
            }
            (Some(seeds), None) => Some(plans::from_seed(seeds).map_err(AdminError::Invalid)?),
            (None, _) => None,
        };
        let user = &mut self.users[position];
        if let Some(enabled) = patch.account_enabled {
            user.account_enabled = enabled;
        }
        if let Some(plans) = plans {
            user.plans = plans;
        }
        if let Some(enabled) = patch.teams_enabled {
            plans::set_teams_enabled(&mut user.plans, enabled);
        }
        if let Some(provisioned) = patch.teams_provisioned {
            user.teams_provisioned = provisioned;
        }
        if let Some(user_type) = patch.user_type {
            user.user_type = user_type;
        }
        Ok(user)
    }
}

impl Tenant {
    /// A user that is not soft-deleted, by object id or UPN: whom Teams and the admin API's
    /// membership changes know.
    pub fn live_user(&self, key: &str) -> Option<&User> {
        self.user(key).filter(|u| !u.deleted)
    }

    /// Soft-deletes a user: the user leaves directory reads and group memberships (held for a
    /// restore) and Teams no longer knows them. Already deleted: `NotFound`, as Graph answers.
    pub fn soft_delete_user(&mut self, key: &str) -> Result<(), AdminError> {
        let position = self
            .user_position(key)
            .filter(|i| !self.users[*i].deleted)
            .ok_or_else(|| AdminError::NotFound(format!("user {key} not found")))?;
        self.users[position].deleted = true;
        self.closures.clear();
        Ok(())
    }

    /// Restores a soft-deleted user, memberships included. Not deleted: `NotFound`, as Graph
    /// answers a restore of an object that is not in the deleted items.
    pub fn restore_user(&mut self, key: &str) -> Result<&User, AdminError> {
        let position = self
            .user_position(key)
            .filter(|i| self.users[*i].deleted)
            .ok_or_else(|| AdminError::NotFound(format!("no deleted user {key}")))?;
        self.users[position].deleted = false;
        self.closures.clear();
        Ok(&self.users[position])
    }
}

impl User {
    /// True while the user's plans include a usable Teams plan.
    pub fn teams_licensed(&self) -> bool {
        plans::teams_licensed(&self.plans)
    }
}
