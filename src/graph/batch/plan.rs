//! Planning a `$batch` run: refusing what Graph would reject for the whole batch, and packing
//! requests into batches of at most 20 without splitting a `dependsOn` chain.

use std::collections::{HashMap, HashSet};

use super::{BatchRequest, MAX_BATCH_SIZE};
use crate::graph::error::GraphError;

/// Graph compares `$batch` ids case-insensitively: `a` and `A` are duplicates, and a duplicate
/// fails the whole batch with 400.
pub(super) fn validate(requests: &[BatchRequest]) -> Result<(), GraphError> {
    let mut ids = HashSet::new();
    let mut folded = HashSet::new();
    for request in requests {
        if request.id.is_empty() {
            return Err(GraphError::Invalid(
                "a batch request has an empty id".into(),
            ));
        }
        ids.insert(request.id.as_str());
        if !folded.insert(request.id.to_lowercase()) {
            return Err(GraphError::Invalid(format!(
                "duplicate batch request id {}",
                request.id
            )));
        }
    }
    for request in requests {
        if let Some(missing) = request
            .depends_on
            .iter()
            .find(|d| !ids.contains(d.as_str()))
        {
            return Err(GraphError::Invalid(format!(
                "batch request {} depends on unknown id {missing}",
                request.id
            )));
        }
    }
    Ok(())
}

/// Packs requests into `$batch`es of at most [`MAX_BATCH_SIZE`], keeping every dependency chain
/// in one batch (Graph resolves `dependsOn` only within a batch). Order is preserved.
pub(super) fn chunks(requests: &[BatchRequest]) -> Result<Vec<Vec<&BatchRequest>>, GraphError> {
    // Union-find over request indices, joined by dependsOn edges.
    let index: HashMap<&str, usize> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let mut parent: Vec<usize> = (0..requests.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, request) in requests.iter().enumerate() {
        for dep in &request.depends_on {
            if let Some(&j) = index.get(dep.as_str()) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: Vec<Vec<&BatchRequest>> = Vec::new();
    let mut group_of_root: HashMap<usize, usize> = HashMap::new();
    for (i, request) in requests.iter().enumerate() {
        let r = root(&mut parent, i);
        let g = *group_of_root.entry(r).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(request);
    }
    let mut batches: Vec<Vec<&BatchRequest>> = Vec::new();
    for group in groups {
        if group.len() > MAX_BATCH_SIZE {
            return Err(GraphError::Invalid(format!(
                "a dependsOn chain of {} requests does not fit in one $batch of {MAX_BATCH_SIZE}",
                group.len()
            )));
        }
        match batches.last_mut() {
            Some(last) if last.len() + group.len() <= MAX_BATCH_SIZE => last.extend(group),
            _ => batches.push(group),
        }
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::BatchMethod;

    fn get(id: &str) -> BatchRequest {
        BatchRequest::new(id, BatchMethod::Get, format!("/x/{id}"))
    }

    #[test]
    fn splits_into_batches_of_twenty_in_order() {
        let requests: Vec<_> = (0..45).map(|i| get(&i.to_string())).collect();
        let batches = chunks(&requests).unwrap();
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [20, 20, 5]
        );
        assert_eq!(batches[1][0].id, "20");
    }

    #[test]
    fn keeps_dependency_chains_together() {
        let mut requests: Vec<_> = (0..19).map(|i| get(&i.to_string())).collect();
        let mut a = get("a");
        a.depends_on = vec!["0".into()];
        let mut b = get("b");
        b.depends_on = vec!["a".into()];
        requests.push(a);
        requests.push(b);
        let batches = chunks(&requests).unwrap();
        // "0", "a" and "b" form one group of 3; it no longer fits beside the other 18.
        let with_zero = batches
            .iter()
            .find(|b| b.iter().any(|r| r.id == "0"))
            .unwrap();
        assert!(with_zero.iter().any(|r| r.id == "b"));
        assert!(batches.iter().all(|b| b.len() <= MAX_BATCH_SIZE));
    }

    #[test]
    fn rejects_duplicates_and_dangling_dependencies() {
        assert!(validate(&[get("1"), get("1")]).is_err());
        assert!(
            validate(&[get("item-a"), get("Item-A")]).is_err(),
            "Graph compares ids case-insensitively"
        );
        let mut a = get("a");
        a.depends_on = vec!["nope".into()];
        assert!(validate(&[a]).is_err());
        assert!(validate(&[get("1"), get("2")]).is_ok());
    }
}
