//! Tag routing (`enable_tag_filtering`), as LiteLLM decides it: a request with tags goes to
//! the group's deployments carrying any of them (all of them with
//! `tag_filtering_match_any: false`), else to those tagged `default`, else nowhere (GW-07);
//! a request without tags goes to the deployments tagged `default`, else to all.

use super::Target;
use crate::classify::{ApiError, Diagnosis, ErrorKind};

pub(super) const DEFAULT: &str = "default";

/// The targets of `group` the request's `tags` may use; `None` means all of them.
pub(super) fn pick(
    group: &str,
    targets: &[Target],
    tags: &[String],
    match_any: bool,
) -> Result<Option<Vec<Target>>, ApiError> {
    let has = |t: &Target, tag: &str| t.deployment.tags.iter().any(|x| x == tag);
    let defaults =
        || -> Vec<Target> { targets.iter().filter(|t| has(t, DEFAULT)).cloned().collect() };
    if tags.is_empty() {
        let d = defaults();
        return Ok((!d.is_empty()).then_some(d));
    }
    let matched: Vec<Target> = targets
        .iter()
        .filter(|t| {
            if match_any {
                tags.iter().any(|tag| has(t, tag))
            } else {
                tags.iter().all(|tag| has(t, tag))
            }
        })
        .cloned()
        .collect();
    if !matched.is_empty() {
        return Ok(Some(matched));
    }
    let d = defaults();
    if !d.is_empty() {
        return Ok(Some(d));
    }
    Err(no_match(group, targets, tags, match_any))
}

/// GW-07: tag routing left no deployment for the request.
fn no_match(group: &str, targets: &[Target], tags: &[String], match_any: bool) -> ApiError {
    let asked = tags.join(", ");
    let each: Vec<String> = targets
        .iter()
        .map(|t| {
            let d = &t.deployment;
            if d.tags.is_empty() {
                format!("{} (no tags)", d.id)
            } else {
                format!("{} (tags: {})", d.id, d.tags.join(", "))
            }
        })
        .collect();
    let how = if match_any { "any" } else { "all" };
    ApiError::new(
        ErrorKind::InvalidRequest,
        format!(
            "No deployment of `{group}` matches the request's tags [{asked}] (tag routing is on)."
        ),
    )
    .with_param("tags")
    .with_diagnosis(Diagnosis::new(
        "GW-07",
        format!(
            "Tag routing is on (enable_tag_filtering), the request's tags are [{asked}], and no \
             deployment of `{group}` has {how} of them or the tag `default`. The deployments: {}.",
            each.join("; ")
        ),
        format!(
            "Send a tag one of those deployments carries (metadata.tags, tags, or the \
             x-litellm-tags header), or add one of [{asked}] — or `default`, for requests no \
             tag matches — to a deployment's litellm_params.tags."
        ),
    ))
}
