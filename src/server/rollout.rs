//! Model rollout across the fleet, the engine side: after `POST /admin/reload` succeeds the
//! replica announces the bundle; every `rollout_poll_ms` each replica reads the announcement
//! and, when it is new and names another version, loads it exactly like a reload (validate,
//! warm up, swap). A bundle it cannot load is refused, the old engine keeps serving, and the
//! reason goes to the fleet view (`GET /admin/fleet`) and `rollouts_total {result}`.

use super::error::ApiError;
use super::state::AppState;
use crate::state::Fleet;
use crate::state::redis::rollout::{Announcement, ReplicaStatus, RolloutOutcome};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Announces the bundle this replica just loaded; returns whether Redis took it.
pub async fn announce(st: &AppState, version: &str) -> bool {
    let Some(fleet) = &st.fleet else {
        return false;
    };
    let a = Announcement {
        id: uuid::Uuid::new_v4().simple().to_string(),
        model_version: version.to_string(),
        bundle: st.bundle_dir.lock().display().to_string(),
        by: fleet.redis.replica.clone(),
        at: crate::clock::now_unix(),
    };
    let ok = match fleet.redis.announce(&a).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "model announcement failed; other replicas keep their model");
            false
        }
    };
    if ok {
        let outcome = outcome(&a, "announced", None);
        let mut mem = fleet.rollout.lock();
        mem.seen = Some(a.id.clone());
        mem.last = Some(outcome);
    }
    st.metrics
        .rollouts
        .with_label_values(&[if ok { "announced" } else { "announce_failed" }])
        .inc();
    report(st, fleet).await;
    ok
}

fn outcome(a: &Announcement, result: &str, error: Option<String>) -> RolloutOutcome {
    RolloutOutcome {
        announcement: a.id.clone(),
        model_version: a.model_version.clone(),
        result: result.to_string(),
        error,
        at: crate::clock::now_unix(),
    }
}

/// Handles a new announcement, if there is one; returns the replica's last outcome.
pub async fn check(st: &Arc<AppState>, fleet: &Arc<Fleet>) -> Option<RolloutOutcome> {
    let announced = match fleet.redis.announcement().await {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(error = %e, "rollout: announcement unreadable");
            None
        }
    };
    if let Some(a) = announced
        && fleet.rollout.lock().seen.as_deref() != Some(a.id.as_str())
    {
        let serving = st.engine.load().as_ref().map(|e| e.version().to_string());
        let done = if serving.as_deref() == Some(a.model_version.as_str()) {
            Some(outcome(&a, "already_serving", None))
        } else {
            match st.reload(Some(PathBuf::from(&a.bundle))).await {
                Ok(_) => {
                    tracing::info!(model_version = %a.model_version, by = %a.by, "rollout: announced bundle loaded");
                    Some(outcome(&a, "loaded", None))
                }
                // Another reload is running: try again next round.
                Err(ApiError::ReloadInProgress) => None,
                Err(e) => {
                    let why = match e {
                        ApiError::BundleRefused(r) => r,
                        other => other.to_string(),
                    };
                    tracing::error!(model_version = %a.model_version, reason = %why, "rollout: announced bundle refused; the old one keeps serving");
                    Some(outcome(&a, "refused", Some(why)))
                }
            }
        };
        if let Some(o) = done {
            st.metrics
                .rollouts
                .with_label_values(&[o.result.as_str()])
                .inc();
            let mut mem = fleet.rollout.lock();
            mem.seen = Some(a.id.clone());
            mem.last = Some(o);
        }
        report(st, fleet).await;
    }
    fleet.rollout.lock().last.clone()
}

/// Writes this replica's entry in the fleet view.
pub async fn report(st: &AppState, fleet: &Fleet) {
    let status = ReplicaStatus {
        replica: fleet.redis.replica.clone(),
        model_version: st.engine.load().as_ref().map(|e| e.version().to_string()),
        last_rollout: fleet.rollout.lock().last.clone(),
        updated_at: crate::clock::now_unix(),
    };
    if let Err(e) = fleet.redis.report(&status).await {
        tracing::debug!(error = %e, "fleet status not written");
    }
}

/// Polls for announcements and refreshes the fleet view until the process ends.
pub async fn follow(st: Arc<AppState>) {
    let Some(fleet) = st.fleet.clone() else {
        return;
    };
    let every = Duration::from_millis(st.cfg.state.redis.rollout_poll_ms);
    loop {
        tokio::time::sleep(every).await;
        // Only once a bundle is serving: the start-up load comes first.
        if st.engine.load().is_some() {
            check(&st, &fleet).await;
            report(&st, &fleet).await;
        }
    }
}
