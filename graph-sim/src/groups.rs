//! Groups and their memberships: nested groups, and the transitive user members Graph lists for
//! `/groups/{id}/transitiveMembers/microsoft.graph.user`. Members are held as indices into the
//! tenant's users and groups (neither ever shrinks), and each group's transitive closure is
//! computed once and cached until a membership changes, so paging through a 20,000-member group
//! does not walk the nesting again for every page.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::seed::GroupSeed;
use super::state::{AdminError, Tenant, User};

pub(crate) struct Group {
    pub id: String,
    pub display_name: String,
    /// Direct members, in the order they were added.
    pub members: Vec<Member>,
}

/// A direct member of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Member {
    /// An index into `Tenant::users`.
    User(usize),
    /// An index into `Tenant::groups`.
    Group(usize),
}

/// The transitive user members of the groups asked about so far, each sorted by user id (see
/// [`by_id`]); emptied whenever any membership changes or a user is deleted or restored. User property changes do not touch it:
/// it holds indices, and properties are read when a page is rendered.
#[derive(Default)]
pub(crate) struct Closures(HashMap<usize, Arc<[usize]>>);

impl Closures {
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// Orders user ids the way pages are cut: case-insensitively, as Graph compares object ids.
pub(crate) fn by_id(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

impl Tenant {
    /// By object id, case-insensitively.
    pub fn group(&self, key: &str) -> Option<&Group> {
        self.group_position(key).map(|i| &self.groups[i])
    }

    pub fn group_position(&self, key: &str) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.id.eq_ignore_ascii_case(key))
    }

    /// Adds the seed's groups: all of them first, then their members, so a group may name a group
    /// that comes later in the list (or itself, or one that names it back).
    pub fn add_groups(&mut self, seeds: &[GroupSeed]) -> Result<(), AdminError> {
        let first = self.groups.len();
        for seed in seeds {
            if seed.id.trim().is_empty() {
                return Err(AdminError::Invalid("a group id is empty".into()));
            }
            if self.group(&seed.id).is_some() {
                return Err(AdminError::Conflict(format!("group {} exists", seed.id)));
            }
            if self.user(&seed.id).is_some() {
                return Err(AdminError::Conflict(format!(
                    "group {} has the id (or UPN) of a user",
                    seed.id
                )));
            }
            self.groups.push(Group {
                id: seed.id.clone(),
                display_name: seed.display_name.clone().unwrap_or_else(|| seed.id.clone()),
                members: Vec::new(),
            });
        }
        // Looking each member up by scanning the groups would make a big seed quadratic.
        let group_index: HashMap<String, usize> = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id.to_ascii_lowercase(), i))
            .collect();
        for (offset, seed) in seeds.iter().enumerate() {
            let mut members = Vec::with_capacity(seed.members.len());
            let mut listed = HashSet::with_capacity(seed.members.len());
            for key in &seed.members {
                let member = match group_index.get(&key.to_ascii_lowercase()) {
                    Some(&g) => Member::Group(g),
                    None => Member::User(self.user_position(key).ok_or_else(|| {
                        AdminError::Invalid(format!(
                            "group {}: member '{key}' is neither a user (object id or UPN) \
                             nor a group of this tenant",
                            seed.id
                        ))
                    })?),
                };
                // A user named twice (by id and by UPN) is one member.
                if listed.insert(member) {
                    members.push(member);
                }
            }
            self.groups[first + offset].members = members;
        }
        self.closures.clear();
        Ok(())
    }

    /// A user (object id or UPN, not soft-deleted) or a group (object id).
    fn member_named(&self, key: &str) -> Option<Member> {
        self.group_position(key).map(Member::Group).or_else(|| {
            self.user_position(key)
                .filter(|u| !self.users[*u].deleted)
                .map(Member::User)
        })
    }

    fn existing_group(&self, key: &str) -> Result<usize, AdminError> {
        self.group_position(key)
            .ok_or_else(|| AdminError::NotFound(format!("group {key} not found")))
    }

    /// Makes `member` (user id, UPN or group id) a direct member of `group`.
    pub fn add_member(&mut self, group: &str, member: &str) -> Result<(), AdminError> {
        let g = self.existing_group(group)?;
        let m = self.member_named(member).ok_or_else(|| {
            AdminError::NotFound(format!("no user or group {member} in this tenant"))
        })?;
        if self.groups[g].members.contains(&m) {
            return Err(AdminError::Conflict(format!(
                "{member} is already a member of group {group}"
            )));
        }
        self.groups[g].members.push(m);
        self.closures.clear();
        Ok(())
    }

    /// Removes a direct member; 404 when `member` is not one.
    pub fn remove_member(&mut self, group: &str, member: &str) -> Result<(), AdminError> {
        let g = self.existing_group(group)?;
        let position = self
            .member_named(member)
            .and_then(|m| self.groups[g].members.iter().position(|x| *x == m))
            .ok_or_else(|| {
                AdminError::NotFound(format!("{member} is not a member of group {group}"))
            })?;
        self.groups[g].members.remove(position);
        self.closures.clear();
        Ok(())
    }

    /// The users reachable from group `g` through any depth of nesting, each once, sorted by id.
    pub fn transitive_users(&mut self, g: usize) -> Arc<[usize]> {
        if let Some(cached) = self.closures.0.get(&g) {
            return cached.clone();
        }
        let closure: Arc<[usize]> = closure(self, g).into();
        self.closures.0.insert(g, closure.clone());
        closure
    }

    /// A direct member's id, for the admin state dump.
    pub fn member_id(&self, member: Member) -> &str {
        match member {
            Member::User(u) => &self.users[u].id,
            Member::Group(g) => &self.groups[g].id,
        }
    }
}

/// What a walk of the nesting reads: each group's direct members and each user, as one view of
/// the directory shows them (the true state, or what a lagging read sees).
pub(crate) trait DirectoryState {
    fn groups(&self) -> usize;
    fn users(&self) -> usize;
    fn members(&self, g: usize) -> &[Member];
    fn user(&self, u: usize) -> &User;
}

impl DirectoryState for Tenant {
    fn groups(&self) -> usize {
        self.groups.len()
    }

    fn users(&self) -> usize {
        self.users.len()
    }

    fn members(&self, g: usize) -> &[Member] {
        &self.groups[g].members
    }

    fn user(&self, u: usize) -> &User {
        &self.users[u]
    }
}

/// The users (not soft-deleted) reachable from group `start`, each once, sorted by id; each group
/// is visited once, so cycles end.
pub(crate) fn closure(directory: &impl DirectoryState, start: usize) -> Vec<usize> {
    let mut seen_group = vec![false; directory.groups()];
    let mut seen_user = vec![false; directory.users()];
    let mut found = Vec::new();
    let mut stack = vec![start];
    seen_group[start] = true;
    while let Some(g) = stack.pop() {
        for member in directory.members(g) {
            match *member {
                Member::User(u) if !seen_user[u] && !directory.user(u).deleted => {
                    seen_user[u] = true;
                    found.push(u);
                }
                Member::Group(n) if !seen_group[n] => {
                    seen_group[n] = true;
                    stack.push(n);
                }
                _ => {}
            }
        }
    }
    found.sort_by(|a, b| by_id(&directory.user(*a).id, &directory.user(*b).id));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Seed;
    use crate::state::World;

    fn world(groups: &str) -> Result<World, String> {
        let yaml = format!(
            "tenants:\n  - id: t\n    users:\n      - {{id: u3, userPrincipalName: c@x}}\n      \
             - {{id: U1, userPrincipalName: a@x}}\n      - {{id: u2, userPrincipalName: b@x}}\n    \
             groups:\n{groups}"
        );
        let seed: Seed = serde_saphyr::from_str(&yaml).map_err(|e| e.to_string())?;
        World::from_seed(&seed).map_err(|e| e.to_string())
    }

    fn ids(world: &mut World, group: &str) -> Vec<String> {
        let tenant = &mut world.tenants[0];
        let g = tenant.group_position(group).unwrap();
        let closure = tenant.transitive_users(g);
        closure
            .iter()
            .map(|u| tenant.users[*u].id.clone())
            .collect()
    }

    #[test]
    fn nesting_and_cycles_count_each_user_once_in_id_order() {
        let mut w = world(
            "      - {id: g1, members: [c@x, g2]}\n      - {id: g2, members: [U1, g1, G2]}\n      \
             - {id: g3, members: [g1, u2, B@X]}\n",
        )
        .unwrap();
        assert_eq!(ids(&mut w, "g1"), ["U1", "u3"]);
        assert_eq!(ids(&mut w, "G2"), ["U1", "u3"]);
        assert_eq!(ids(&mut w, "g3"), ["U1", "u2", "u3"]);
        assert_eq!(
            w.tenants[0].groups[2].members.len(),
            2,
            "u2 and b@x are one"
        );
    }

    #[test]
    fn membership_changes_drop_the_cached_closures() {
        let mut w =
            world("      - {id: g1, members: [g2]}\n      - {id: g2, members: []}\n").unwrap();
        assert!(ids(&mut w, "g1").is_empty());
        w.tenants[0].add_member("g2", "b@x").unwrap();
        assert_eq!(ids(&mut w, "g1"), ["u2"]);
        assert!(matches!(
            w.tenants[0].add_member("g2", "u2"),
            Err(AdminError::Conflict(_))
        ));
        w.tenants[0].remove_member("g2", "U2").unwrap();
        assert!(ids(&mut w, "g1").is_empty());
        assert!(matches!(
            w.tenants[0].remove_member("g2", "u2"),
            Err(AdminError::NotFound(_))
        ));
        assert!(matches!(
            w.tenants[0].add_member("g2", "nobody"),
            Err(AdminError::NotFound(_))
        ));
    }

    #[test]
    fn bad_group_seeds_are_refused_with_the_reason() {
        let unknown = world("      - {id: g1, members: [u1, nobody@x]}\n")
            .err()
            .unwrap();
        assert!(
            unknown.contains("group g1: member 'nobody@x' is neither a user"),
            "{unknown}"
        );
        for (groups, why) in [
            ("      - {id: g1}\n      - {id: G1}\n", "duplicate"),
            ("      - {id: u2}\n", "a user's id"),
            ("      - {id: ' '}\n", "empty"),
        ] {
            assert!(world(groups).is_err(), "{why}");
        }
    }
}
