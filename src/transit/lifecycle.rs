//! The lifecycle `declared → departed → in_transit ⇄ at_bcp → … → arrived → closed` (plus
//! `cancelled`), driven by zone events of the geofence engine and by officers' actions.
//!
//! Zone events move a transit only forward along its itinerary: leaving the office of
//! departure, entering the next BCP's first post, leaving its far post, entering the office
//! of destination. Reaching a checkpoint beyond the next one raises a skipped-BCP alert for
//! each one passed over; coming back to a BCP already passed is travel the wrong way.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::alert::{AlertKind, Candidate};
use super::itinerary::CheckpointKind;
use super::model::{Actor, Stage, Status, Transit, Transition};
use super::performance::{BcpPassage, SectionRun};

/// Who and when, for every change.
#[derive(Clone, Debug)]
pub struct Cause {
    pub by: Actor,
    /// When it happened: device time for device data, the action's time for an officer.
    pub at: DateTime<Utc>,
    /// Server time when Caravan recorded it.
    pub recorded_at: DateTime<Utc>,
    pub late: bool,
}

/// What a step produced besides the new stage, for the book to record.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Moved(Transition),
    Alert(Candidate),
    /// The condition of the unresolved alert with this key ended.
    ConditionEnded {
        key: String,
        at: DateTime<Utc>,
    },
    PassageEnded(BcpPassage),
    SectionEnded(SectionRun),
    /// A seal opened inside a post or office zone: recorded for the inspection there.
    SealOpenedAtControl {
        seal_id: String,
        zone_id: Option<String>,
        at: DateTime<Utc>,
    },
}

/// An officer's action on a transit's lifecycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OfficerAction {
    ConfirmDeparture,
    /// At a BCP post, or at the office of destination.
    ConfirmArrival {
        place: String,
    },
    /// At the far post of a BCP.
    ConfirmExit {
        place: String,
    },
    Close,
    Cancel {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("the transit is {status}; {action} is not possible now")]
    NotNow {
        status: &'static str,
        action: &'static str,
    },
    #[error("`{0}` is not a post or office on this transit's itinerary")]
    UnknownPlace(String),
    #[error("the transit has {0} unresolved alert(s); resolve them before closing")]
    UnresolvedAlerts(usize),
}

/// How the device met a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneMove {
    Enter,
    Exit,
    /// Two sparse fixes either side: entered and left between them.
    Cross,
}

fn move_to(t: &mut Transit, to: Stage, cause: &Cause, place: &str, note: Option<String>) -> Effect {
    let transition = Transition {
        from: Status::from(t.stage),
        to: Status::from(to),
        at: cause.at,
        recorded_at: Some(cause.recorded_at),
        by: cause.by.clone(),
        place: Some(place.to_owned()),
        late: cause.late,
        note,
    };
    t.stage = to;
    t.record_transition(transition.clone());
    Effect::Moved(transition)
}

/// Leaves the office of departure: departed (implicitly, when no officer confirmed it) and
/// in transit on the first leg.
fn depart(t: &mut Transit, cause: &Cause, out: &mut Vec<Effect>) {
    let office = t
        .itinerary
        .checkpoints
        .first()
        .map(|c| c.id.clone())
        .unwrap_or_default();
    if t.stage == Stage::Declared {
        let note = Some("left the office before departure was confirmed".to_owned());
        out.push(move_to(t, Stage::Departed, cause, &office, note));
    }
    if t.stage == Stage::Departed {
        out.push(move_to(t, Stage::InTransit, cause, &office, None));
        t.motion.section_started_at = Some(cause.at);
        t.motion.stopped_s = 0;
    }
}

/// Skipped-BCP alerts for the checkpoints strictly between the current leg's end and `k`.
fn skip_to(t: &mut Transit, k: usize, cause: &Cause, out: &mut Vec<Effect>) {
    for skipped in t.leg + 1..k {
        let Some(cp) = t.itinerary.checkpoints.get(skipped) else {
            continue;
        };
        if cp.kind != CheckpointKind::Bcp {
            continue;
        }
        let mut c = Candidate::new(
            AlertKind::SkippedBcp,
            format!("skipped_bcp:{}", cp.id),
            cause.at,
        );
        c.late = cause.late;
        c.detail = serde_json::json!({ "bcp_id": cp.id, "bcp_name": cp.name });
        out.push(Effect::Alert(c));
    }
    if k > t.leg + 1 {
        t.leg = k - 1;
    }
}

/// Arrives at BCP checkpoint `k` through `post`.
fn arrive_bcp(t: &mut Transit, k: usize, post: &str, cause: &Cause, out: &mut Vec<Effect>) {
    if matches!(t.stage, Stage::Declared | Stage::Departed) {
        depart(t, cause, out);
    }
    skip_to(t, k, cause, out);
    if t.stage == Stage::AtBcp {
        return;
    }
    let bcp = t.itinerary.checkpoints[k].id.clone();
    t.passages.push(BcpPassage {
        bcp_id: bcp.clone(),
        transit_id: t.id.to_string(),
        entered_at: cause.at,
        entered_post: post.to_owned(),
        left_at: None,
        left_post: None,
    });
    out.push(move_to(t, Stage::AtBcp, cause, post, None));
}

/// Leaves BCP checkpoint `k` through its far post: the passage and the section end, and the
/// next leg begins.
fn leave_bcp(t: &mut Transit, k: usize, post: &str, cause: &Cause, out: &mut Vec<Effect>) {
    let bcp = t.itinerary.checkpoints[k].id.clone();
    let mut dwell_s = 0;
    if let Some(p) = t
        .passages
        .iter_mut()
        .rev()
        .find(|p| p.bcp_id == bcp && p.left_at.is_none())
    {
        p.left_at = Some(cause.at);
        p.left_post = Some(post.to_owned());
        dwell_s = p.duration_s().unwrap_or(0);
        out.push(Effect::PassageEnded(p.clone()));
    }
    end_section(t, cause.at, dwell_s, out);
    t.leg = k;
    out.push(move_to(t, Stage::InTransit, cause, post, None));
    t.motion.section_started_at = Some(cause.at);
}

fn end_section(t: &mut Transit, at: DateTime<Utc>, dwell_s: i64, out: &mut Vec<Effect>) {
    let (Some(started), Some(leg)) = (t.motion.section_started_at, t.itinerary.legs.get(t.leg))
    else {
        return;
    };
    out.push(Effect::SectionEnded(SectionRun {
        from: leg.from.clone(),
        to: leg.to.clone(),
        transit_id: t.id.to_string(),
        distance_m: leg.distance_m,
        started_at: started,
        ended_at: at,
        delay_s: dwell_s + t.motion.stopped_s,
    }));
    t.motion.stopped_s = 0;
    t.motion.section_started_at = None;
}

/// Arrives at the office of destination, with skipped-BCP alerts for any BCP not passed.
fn arrive_destination(t: &mut Transit, cause: &Cause, out: &mut Vec<Effect>) {
    let last = t.itinerary.checkpoints.len().saturating_sub(1);
    let office = t.itinerary.checkpoints[last].id.clone();
    // A vehicle still at a BCP when it reaches the office of destination has passed that
    // BCP: the far post's zone can reach the office (Alat's Turkmen post reaches
    // Turkmenabat), and then no fix shows the vehicle leaving it.
    if t.stage == Stage::AtBcp {
        let k = t.leg + 1;
        let far = t
            .itinerary
            .checkpoints
            .get(k)
            .filter(|cp| cp.kind == CheckpointKind::Bcp && k < last)
            .and_then(|cp| cp.posts.last())
            .map(|p| p.id.clone());
        if let Some(far) = far {
            leave_bcp(t, k, &far, cause, out);
        }
    }
    skip_to(t, last, cause, out);
    end_section(t, cause.at, 0, out);
    out.push(move_to(t, Stage::Arrived, cause, &office, None));
}

/// Applies a zone event to the lifecycle.
pub fn on_zone(t: &mut Transit, mv: ZoneMove, zone_id: &str, cause: &Cause) -> Vec<Effect> {
    let mut out = Vec::new();
    if t.stage.is_final() || t.stage == Stage::Arrived {
        return out;
    }
    let it = &t.itinerary;
    let last = it.checkpoints.len().saturating_sub(1);
    if it.checkpoints.first().is_some_and(|c| c.id == zone_id) {
        if matches!(mv, ZoneMove::Exit | ZoneMove::Cross) {
            depart(t, cause, &mut out);
        }
        return out;
    }
    if it
        .checkpoints
        .get(last)
        .is_some_and(|c| c.id == zone_id && last > 0)
    {
        if matches!(mv, ZoneMove::Enter | ZoneMove::Cross) {
            arrive_destination(t, cause, &mut out);
        }
        return out;
    }
    let Some((k, cp)) = it.checkpoint_of_post(zone_id) else {
        return out;
    };
    let far = cp.posts.get(1).is_some_and(|p| p.id == zone_id);
    if k <= t.leg {
        if matches!(mv, ZoneMove::Enter | ZoneMove::Cross) {
            let key = format!("wrong_direction:{}", cp.id);
            let mut c = Candidate::new(AlertKind::WrongDirection, key, cause.at);
            c.late = cause.late;
            c.detail = serde_json::json!({ "returned_to_bcp": cp.id, "post_id": zone_id });
            out.push(Effect::Alert(c));
        }
        return out;
    }
    if matches!(mv, ZoneMove::Enter | ZoneMove::Cross) {
        arrive_bcp(t, k, zone_id, cause, &mut out);
    }
    if far && matches!(mv, ZoneMove::Exit | ZoneMove::Cross) && t.stage == Stage::AtBcp {
        leave_bcp(t, k, zone_id, cause, &mut out);
    }
    out
}

/// A border crossing the engine attributed to a BCP: when the zone fixes were too sparse to
/// show the passage, it still moves the transit past that BCP; a crossing through a BCP not
/// next on the itinerary skips the expected one.
pub fn on_border(t: &mut Transit, bcp_id: Option<&str>, cause: &Cause) -> Vec<Effect> {
    let mut out = Vec::new();
    if t.stage.is_final() || t.stage == Stage::Arrived {
        return out;
    }
    let expected = t.leg + 1;
    let Some(bcp_id) = bcp_id else { return out };
    if t.itinerary.starts_or_ends_at(bcp_id) {
        national_border(t, bcp_id, cause, &mut out);
        return out;
    }
    match t.itinerary.checkpoint(bcp_id) {
        Some((k, cp)) if k >= expected && cp.kind == CheckpointKind::Bcp => {
            if t.stage == Stage::AtBcp && k == expected {
                return out;
            }
            let far = cp
                .posts
                .get(1)
                .or(cp.posts.first())
                .map(|p| p.id.clone())
                .unwrap_or_default();
            arrive_bcp(t, k, &far, cause, &mut out);
            leave_bcp(t, k, &far, cause, &mut out);
        }
        Some(_) => {}
        None if expected + 1 < t.itinerary.checkpoints.len() => {
            skip_to(t, expected + 1, cause, &mut out);
        }
        None => {}
    }
    out
}

/// A national transit crossing the border at the BCP of its post of entry or exit: entering
/// through the post of entry is leaving the place of departure; leaving through the post of
/// exit is reaching the destination, even when no fix fell inside the post's zone.
fn national_border(t: &mut Transit, bcp_id: &str, cause: &Cause, out: &mut Vec<Effect>) {
    let it = &t.itinerary;
    let at_start = it
        .checkpoints
        .first()
        .is_some_and(|c| c.bcp_id.as_deref() == Some(bcp_id));
    let at_end = it.checkpoints.len() > 1
        && it
            .checkpoints
            .last()
            .is_some_and(|c| c.bcp_id.as_deref() == Some(bcp_id));
    if at_start && matches!(t.stage, Stage::Declared | Stage::Departed) {
        depart(t, cause, out);
    } else if at_end && t.leg + 2 >= it.checkpoints.len() {
        arrive_destination(t, cause, out);
    }
}

/// Applies an officer's action.
///
/// # Errors
/// The action does not fit the transit's stage, names a place off its itinerary, or would
/// close a transit with unresolved alerts.
pub fn act(
    t: &mut Transit,
    action: &OfficerAction,
    cause: &Cause,
) -> Result<Vec<Effect>, LifecycleError> {
    let mut out = Vec::new();
    let not_now = |t: &Transit, action| LifecycleError::NotNow {
        status: t.status().as_str(),
        action,
    };
    match action {
        OfficerAction::ConfirmDeparture if t.stage == Stage::Declared => {
            let office = t
                .itinerary
                .checkpoints
                .first()
                .map(|c| c.id.clone())
                .unwrap_or_default();
            out.push(move_to(t, Stage::Departed, cause, &office, None));
        }
        OfficerAction::ConfirmDeparture => return Err(not_now(t, "confirming departure")),
        OfficerAction::ConfirmArrival { place } => confirm_arrival(t, place, cause, &mut out)?,
        OfficerAction::ConfirmExit { place } => {
            let (k, _) = t
                .itinerary
                .checkpoint_of_post(place)
                .ok_or_else(|| LifecycleError::UnknownPlace(place.clone()))?;
            if k <= t.leg || t.stage.is_final() || t.stage == Stage::Arrived {
                return Err(not_now(t, "confirming exit at this post"));
            }
            arrive_bcp(t, k, place, cause, &mut out);
            leave_bcp(t, k, place, cause, &mut out);
        }
        OfficerAction::Close if t.stage == Stage::Arrived => {
            let open = t.alerts.iter().filter(|a| a.is_unresolved()).count();
            if open > 0 {
                return Err(LifecycleError::UnresolvedAlerts(open));
            }
            let office = t
                .itinerary
                .checkpoints
                .last()
                .map(|c| c.id.clone())
                .unwrap_or_default();
            out.push(move_to(t, Stage::Closed, cause, &office, None));
        }
        OfficerAction::Close => return Err(not_now(t, "closing")),
        OfficerAction::Cancel { reason }
            if matches!(t.stage, Stage::Declared | Stage::Departed) =>
        {
            let office = t
                .itinerary
                .checkpoints
                .first()
                .map(|c| c.id.clone())
                .unwrap_or_default();
            out.push(move_to(
                t,
                Stage::Cancelled,
                cause,
                &office,
                Some(reason.clone()),
            ));
        }
        OfficerAction::Cancel { .. } => return Err(not_now(t, "cancelling")),
    }
    Ok(out)
}

fn confirm_arrival(
    t: &mut Transit,
    place: &str,
    cause: &Cause,
    out: &mut Vec<Effect>,
) -> Result<(), LifecycleError> {
    let not_now = |t: &Transit| LifecycleError::NotNow {
        status: t.status().as_str(),
        action: "confirming arrival here",
    };
    if t.stage.is_final() || t.stage == Stage::Arrived {
        return Err(not_now(t));
    }
    let last = t.itinerary.checkpoints.len().saturating_sub(1);
    if t.itinerary
        .checkpoints
        .get(last)
        .is_some_and(|c| c.id == place)
    {
        if matches!(t.stage, Stage::Declared | Stage::Departed) {
            depart(t, cause, out);
        }
        arrive_destination(t, cause, out);
        return Ok(());
    }
    let (k, _) = t
        .itinerary
        .checkpoint_of_post(place)
        .ok_or_else(|| LifecycleError::UnknownPlace(place.to_owned()))?;
    if k <= t.leg {
        return Err(not_now(t));
    }
    arrive_bcp(t, k, place, cause, out);
    Ok(())
}
