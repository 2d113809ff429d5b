//! Which snapshots a retention policy keeps, and why. A snapshot kept by any rule is kept;
//! one marked keep-forever is kept whatever the rules.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::SnapshotIndex;

/// Retention rules; any combination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The N newest snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Snapshots taken within this many seconds before now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within_secs: Option<u64>,
    /// The newest snapshot of each of the last N days (UTC) that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    /// The newest of each of the last N ISO weeks that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    /// The newest of each of the last N months that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
}

impl Policy {
    /// What managed platforms keep by default: 7 days.
    pub fn seven_days() -> Self {
        Policy {
            keep_within_secs: Some(7 * 86400),
            ..Policy::default()
        }
    }

    /// Whether no rule is set.
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }

    /// The rules in words, e.g. `keep-within 7d, keep-daily 7`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.keep_last {
            parts.push(format!("keep-last {n}"));
        }
        if let Some(s) = self.keep_within_secs {
            parts.push(format!(
                "keep-within {}",
                humantime::format_duration(Duration::from_secs(s))
            ));
        }
        if let Some(n) = self.keep_daily {
            parts.push(format!("keep-daily {n}"));
        }
        if let Some(n) = self.keep_weekly {
            parts.push(format!("keep-weekly {n}"));
        }
        if let Some(n) = self.keep_monthly {
            parts.push(format!("keep-monthly {n}"));
        }
        if parts.is_empty() {
            "no rule (keeps nothing but protected snapshots)".into()
        } else {
            parts.join(", ")
        }
    }
}

/// One snapshot's fate under a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Its id.
    pub id: String,
    /// When it was taken.
    pub created: String,
    /// Whether it is kept.
    pub keep: bool,
    /// The rules that keep it (none: it goes).
    pub reasons: Vec<String>,
}

/// Applies `policy` to `snapshots` at `now`, keeping the `protected` ones whatever the
/// rules; the result is oldest first.
pub fn decide(
    snapshots: &[SnapshotIndex],
    protected: &HashSet<String>,
    policy: &Policy,
    now: SystemTime,
) -> Vec<Decision> {
    let mut newest_first: Vec<(&SnapshotIndex, Option<SystemTime>)> = snapshots
        .iter()
        .map(|s| (s, humantime::parse_rfc3339(&s.created).ok()))
        .collect();
    newest_first.sort_by(|a, b| (b.1, b.0.order()).cmp(&(a.1, a.0.order())));
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); newest_first.len()];
    for (i, (s, _)) in newest_first.iter().enumerate() {
        if protected.contains(&s.id) {
            reasons[i].push("protected".into());
        }
    }
    if let Some(n) = policy.keep_last {
        for r in reasons.iter_mut().take(n as usize) {
            r.push(format!("keep-last {n}"));
        }
    }
    if let Some(secs) = policy.keep_within_secs {
        let since = now.checked_sub(Duration::from_secs(secs));
        for (i, (_, t)) in newest_first.iter().enumerate() {
            if matches!((t, since), (Some(t), Some(since)) if *t >= since) {
                reasons[i].push(format!(
                    "keep-within {}",
                    humantime::format_duration(Duration::from_secs(secs))
                ));
            }
        }
    }
    /// A rule's count, its name, and the bucket (day, week, month) of a time.
    type Bucketed<'a> = (Option<u32>, &'a str, fn(&str) -> String);
    let buckets: [Bucketed; 3] = [
        (policy.keep_daily, "keep-daily", |c| c[..10].to_string()),
        (policy.keep_weekly, "keep-weekly", iso_week),
        (policy.keep_monthly, "keep-monthly", |c| c[..7].to_string()),
    ];
    for (count, rule, bucket_of) in buckets {
        let Some(n) = count else { continue };
        let mut seen: Vec<String> = Vec::new();
        for (i, (s, _)) in newest_first.iter().enumerate() {
            if s.created.len() < 10 {
                continue;
            }
            let bucket = bucket_of(&s.created);
            if seen.len() < n as usize && !seen.contains(&bucket) {
                reasons[i].push(format!("{rule} {n} ({bucket})"));
                seen.push(bucket);
            }
        }
    }
    let mut out: Vec<Decision> = newest_first
        .iter()
        .zip(reasons)
        .map(|((s, _), r)| Decision {
            id: s.id.clone(),
            created: s.created.clone(),
            keep: !r.is_empty(),
            reasons: r,
        })
        .collect();
    out.reverse();
    out
}

/// `2026-W48` for an RFC 3339 UTC time.
fn iso_week(created: &str) -> String {
    let y: i64 = created[..4].parse().unwrap_or(1970);
    let m: i64 = created[5..7].parse().unwrap_or(1);
    let d: i64 = created[8..10].parse().unwrap_or(1);
    // Days since 1970-01-01 (civil-from-days inverse), then the ISO week of that day.
    let days = days_from_civil(y, m, d);
    let weekday = (days + 3).rem_euclid(7); // Monday = 0
    let thursday = days - weekday + 3;
    let (ty, _, _) = civil_from_days(thursday);
    let jan1 = days_from_civil(ty, 1, 1);
    let week = (thursday - jan1) / 7 + 1;
    format!("{ty}-W{week:02}")
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, created: &str) -> SnapshotIndex {
        SnapshotIndex {
            id: id.into(),
            created: created.into(),
            committed: created.into(),
            duration_seconds: 1.0,
            databases: vec![],
            tags: vec![],
            source: String::new(),
            binlog: Default::default(),
            tables: 0,
            rows: 0,
            raw_bytes: 0,
            stored_bytes: 0,
            manifest_sha256: String::new(),
            manifest_bytes: 0,
            objects: vec![],
        }
    }

    #[test]
    fn any_rule_keeps_and_protected_snapshots_stay() {
        let all = vec![
            snap("a", "2026-11-01T10:00:00Z"),
            snap("b", "2026-11-20T10:00:00Z"),
            snap("c", "2026-11-28T09:00:00Z"),
            snap("d", "2026-11-28T23:00:00Z"),
            snap("e", "2026-12-01T10:00:00Z"),
        ];
        let now = humantime::parse_rfc3339("2026-12-02T12:00:00Z").unwrap();
        let protected: HashSet<String> = ["a".to_string()].into();
        let keep = |p: &Policy| -> Vec<String> {
            decide(&all, &protected, p, now)
                .into_iter()
                .filter(|d| d.keep)
                .map(|d| d.id)
                .collect()
        };
        assert_eq!(keep(&Policy::seven_days()), ["a", "c", "d", "e"]);
        assert_eq!(
            keep(&Policy {
                keep_last: Some(2),
                ..Policy::default()
            }),
            ["a", "d", "e"]
        );
        // The newest of each of the last 2 days that have one: 12-01 (e) and 11-28 (d).
        assert_eq!(
            keep(&Policy {
                keep_daily: Some(2),
                ..Policy::default()
            }),
            ["a", "d", "e"]
        );
        assert_eq!(
            keep(&Policy {
                keep_monthly: Some(2),
                ..Policy::default()
            }),
            ["a", "d", "e"]
        );
        assert_eq!(keep(&Policy::default()), ["a"]);
        let d = decide(
            &all,
            &protected,
            &Policy {
                keep_last: Some(1),
                keep_weekly: Some(1),
                ..Policy::default()
            },
            now,
        );
        let e = d.iter().find(|d| d.id == "e").unwrap();
        assert_eq!(e.reasons, ["keep-last 1", "keep-weekly 1 (2026-W49)"]);
    }

    #[test]
    fn iso_weeks_cross_years_as_iso_says() {
        assert_eq!(iso_week("2026-12-02T00:00:00Z"), "2026-W49");
        assert_eq!(iso_week("2021-01-03T00:00:00Z"), "2020-W53");
        assert_eq!(iso_week("2024-12-30T00:00:00Z"), "2025-W01");
    }
}
