//! The dashboard's own refusals (UI-01..05), each with its cause and fix like every other
//! catalog family. Never carries the key that was presented.

use crate::classify::{ApiError, Diagnosis, ErrorKind};

/// UI-01: sign-in with a key the gateway does not know.
pub fn sign_in_refused(open: bool) -> ApiError {
    let cause = if open {
        "This gateway has no master key, so the dashboard is open without signing in; the key \
         given is not a virtual key it knows."
    } else {
        "The key given is neither the gateway's master key nor a virtual key it knows (it may \
         have been mistyped, deleted or regenerated)."
    };
    ApiError::new(ErrorKind::Unauthorized, "Sign-in refused: this key is not accepted.")
        .with_diagnosis(Diagnosis::new(
            "UI-01",
            cause,
            "Paste the master key (`general_settings.master_key`) or a virtual key from \
             `switchyard keys list`; an administrator can create one with `switchyard keys create`.",
        ))
}

/// UI-02: no session, or one that expired, was forged or signed with an older master key.
pub fn not_signed_in(why: &str) -> ApiError {
    ApiError::new(ErrorKind::Unauthorized, format!("Not signed in to the dashboard: {why}."))
        .with_diagnosis(Diagnosis::new(
            "UI-02",
            "Dashboard calls need the session cookie that signing in at /ui sets (or an \
             `Authorization: Bearer` key). Sessions last 12 hours and end when the master key \
             changes.",
            "Open /ui and sign in again with the master key or a virtual key.",
        ))
}

/// UI-03: a change without the session's CSRF token, or from another site.
pub fn csrf(why: &str) -> ApiError {
    ApiError::new(ErrorKind::PermissionDenied, format!("Change refused: {why}.")).with_diagnosis(
        Diagnosis::new(
            "UI-03",
            "Every change made through /ui/api must carry the `x-csrf-token` header that \
             `GET /ui/api/session` returns for this session, and come from the dashboard's own \
             origin, so another web site cannot act with your session.",
            "Reload the dashboard and try again; scripts should send `Authorization: Bearer \
             <key>` instead of the cookie.",
        ),
    )
}

/// UI-04: a virtual key's session tried to change something.
pub fn read_only() -> ApiError {
    ApiError::new(
        ErrorKind::PermissionDenied,
        "This dashboard session is read-only: it was signed in with a virtual key.",
    )
    .with_diagnosis(Diagnosis::new(
        "UI-04",
        "A virtual key sees only its own data and cannot change keys, teams or deployments.",
        "Sign out and sign in with the master key (`general_settings.master_key`).",
    ))
}

/// UI-05: a page asked about a deployment this config does not have.
pub fn no_deployment(id: &str) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("No deployment has the id `{id}`.")).with_diagnosis(
        Diagnosis::new(
            "UI-05",
            "The id is not one of the loaded config's deployments (a reload may have changed \
             them).",
            "Reload the Deployments page to see the current ids.",
        ),
    )
}

/// UI-06: a page only the administrator may read (the config).
pub fn admin_only() -> ApiError {
    ApiError::new(ErrorKind::PermissionDenied, "Only the master key may read the config.")
        .with_diagnosis(Diagnosis::new(
            "UI-06",
            "The config names every deployment and where its credentials come from; a virtual \
             key's session sees only its own data.",
            "Sign in with the master key (`general_settings.master_key`).",
        ))
}
