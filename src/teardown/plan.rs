//! The teardown plan: every resource of the environment in the order the cancellation guide
//! removes them (aptible-api.md §9.2: metric drains, log drains of every kind, apps with their
//! endpoints, databases with replicas before their primaries, the remaining backups, the
//! environment), each with the request that removes it (§9.1), and the coverage of each
//! database ([`super::coverage`]). [`TeardownPlan`] is what `exporter teardown` prints and
//! `--json` serializes (README, "Teardown").

use chrono::{DateTime, Utc};
use exporter_aptible::{Account, App, Backup, Database, Inventory, LogDrain, MetricDrain};
use serde::{Deserialize, Serialize};

use super::coverage::Coverage;
use crate::verify::Level;

/// What kind of resource a step removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Guide step 2.
    MetricDrain,
    /// Guide step 3 (every `drain_type`, `tail` included).
    LogDrain,
    /// Guide step 4 (its endpoints go with it).
    App,
    /// Guide step 5.
    Database,
    /// Guide step 6 (final, manual, orphaned backups and copies).
    Backup,
    /// Guide step 7.
    Environment,
}

impl StepKind {
    /// In words, for listings: `metric drain`, `log drain`, `app`, `database`, `backup`,
    /// `environment`.
    #[must_use]
    pub fn noun(self) -> &'static str {
        match self {
            Self::MetricDrain => "metric drain",
            Self::LogDrain => "log drain",
            Self::App => "app",
            Self::Database => "database",
            Self::Backup => "backup",
            Self::Environment => "environment",
        }
    }
}

/// The platform resource a step removes (what the executor hands to the client).
#[derive(Debug, Clone)]
pub enum Resource {
    /// A metric drain.
    MetricDrain(MetricDrain),
    /// A log drain.
    LogDrain(LogDrain),
    /// An app.
    App(App),
    /// A database.
    Database(Database),
    /// A backup.
    Backup(Backup),
    /// The environment.
    Environment(Account),
}

/// One step of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `<kind>:<id>`, the journal's key.
    pub key: String,
    /// What kind of resource.
    pub kind: StepKind,
    /// The platform's id.
    pub id: u64,
    /// The resource in words (`log drain tail-1 (#71, tail)`).
    pub resource: String,
    /// The request that removes it (`POST /log_drains/71/operations {"type":"deprovision"}`).
    pub request: String,
    /// What goes with it (an app's endpoints), or what is left behind (a database's final
    /// backup).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Done by an earlier `--apply` (from the journal).
    pub done: bool,
    #[serde(skip)]
    pub(crate) target: Resource,
}

/// The plan as printed by `exporter teardown` (and `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct TeardownPlan {
    /// The environment's handle.
    pub environment: String,
    /// Its id.
    pub environment_id: u64,
    /// Where the runs were read.
    pub destination: String,
    /// The level the gate requires.
    pub required_level: Level,
    /// Whether it is below `restore` (`--require-level decompress`): an explicit downgrade.
    pub downgraded: bool,
    /// `--max-age` in seconds.
    pub max_age_seconds: u64,
    /// When the plan was made.
    pub planned_at: DateTime<Utc>,
    /// Per database: the archive that covers it, or the gap.
    pub coverage: Coverage,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// The run the journal and the reports are kept in (the newest covering run), if any.
    pub journal_run: Option<String>,
    /// Steps an earlier `--apply` finished (from the journal).
    pub resumed_steps: usize,
    /// What is missing before `--apply` can run (empty: ready).
    pub missing: Vec<String>,
    /// Things worth knowing that block nothing.
    pub notes: Vec<String>,
}

impl TeardownPlan {
    /// Whether `--apply` may run.
    #[must_use]
    pub fn ready(&self) -> bool {
        self.missing.is_empty()
    }
}

/// The path of an href (`/metric_drains/80/operations`), for the journal and messages.
fn path_of(href: Option<&str>, fallback: &str) -> String {
    href.and_then(|h| url::Url::parse(h).ok())
        .map_or_else(|| fallback.to_owned(), |u| u.path().to_owned())
}

fn operation_request(links: &exporter_aptible::hal::Links, fallback: &str, kind: &str) -> String {
    format!(
        "POST {} {{\"type\":\"{kind}\"}}",
        path_of(links.href("operations"), fallback)
    )
}

/// Order databases so that each replica comes before the database it replicates (chains
/// too), then by handle: `(id, handle, primary id)` → indexes in removal order.
#[must_use]
pub fn database_order(dbs: &[(u64, &str, Option<u64>)]) -> Vec<usize> {
    let depth = |start: usize| -> usize {
        let mut d = 0;
        let mut cur = start;
        while let Some(p) = dbs[cur].2
            && let Some(next) = dbs.iter().position(|x| x.0 == p)
            && d < dbs.len()
        {
            d += 1;
            cur = next;
        }
        d
    };
    let mut order: Vec<usize> = (0..dbs.len()).collect();
    order.sort_by(|&a, &b| depth(b).cmp(&depth(a)).then_with(|| dbs[a].1.cmp(dbs[b].1)));
    order
}

/// Backups in purge order: originals before copies (purging an original removes its copies,
/// after which a copy's purge answers 404 = done; spec §9.2), each group newest first.
#[must_use]
pub fn backup_order(backups: &[Backup]) -> Vec<Backup> {
    let mut out: Vec<Backup> = backups.iter().filter(|b| !b.is_copy()).cloned().collect();
    out.extend(backups.iter().filter(|b| b.is_copy()).cloned());
    out
}

/// A backup's step.
#[must_use]
pub fn backup_step(b: &Backup, orphaned: bool) -> Step {
    let mut what = vec![b.origin().to_owned()];
    if orphaned {
        what.push("orphaned".to_owned());
    }
    if let Some(h) = &b.database_handle {
        what.push(format!("of {h}"));
    }
    what.push(format!("taken {}", b.created_at));
    Step {
        key: format!("backup:{}", b.id),
        kind: StepKind::Backup,
        id: b.id,
        resource: format!("backup #{} ({})", b.id, what.join(", ")),
        request: operation_request(&b.links, &format!("/backups/{}/operations", b.id), "purge"),
        notes: Vec::new(),
        done: false,
        target: Resource::Backup(b.clone()),
    }
}

/// The steps of an environment's inventory, in the guide's order (steps 2 to 7).
#[must_use]
pub fn steps(inventory: &Inventory) -> Vec<Step> {
    let mut steps = Vec::new();
    for d in &inventory.metric_drains {
        steps.push(Step {
            key: format!("metric_drain:{}", d.id),
            kind: StepKind::MetricDrain,
            id: d.id,
            resource: format!("metric drain {} (#{}, {})", d.handle, d.id, d.drain_type),
            request: operation_request(
                &d.links,
                &format!("/metric_drains/{}/operations", d.id),
                "deprovision",
            ),
            notes: Vec::new(),
            done: false,
            target: Resource::MetricDrain(d.clone()),
        });
    }
    for d in &inventory.log_drains {
        steps.push(Step {
            key: format!("log_drain:{}", d.id),
            kind: StepKind::LogDrain,
            id: d.id,
            resource: format!("log drain {} (#{}, {})", d.handle, d.id, d.drain_type),
            request: operation_request(
                &d.links,
                &format!("/log_drains/{}/operations", d.id),
                "deprovision",
            ),
            notes: Vec::new(),
            done: false,
            target: Resource::LogDrain(d.clone()),
        });
    }
    for a in &inventory.apps {
        let notes = a
            .vhosts
            .iter()
            .map(|v| {
                format!(
                    "endpoint #{} {} goes with it",
                    v.id,
                    v.external_host
                        .as_deref()
                        .or(v.virtual_domain.as_deref())
                        .unwrap_or("-")
                )
            })
            .collect();
        steps.push(Step {
            key: format!("app:{}", a.app.id),
            kind: StepKind::App,
            id: a.app.id,
            resource: format!("app {} (#{})", a.app.handle, a.app.id),
            request: operation_request(
                &a.app.links,
                &format!("/apps/{}/operations", a.app.id),
                "deprovision",
            ),
            notes,
            done: false,
            target: Resource::App(a.app.clone()),
        });
    }
    let dbs: Vec<(u64, &str, Option<u64>)> = inventory
        .databases
        .iter()
        .map(|e| {
            let primary = e
                .database
                .initialize_from()
                .and_then(|h| inventory.database_by_href(h))
                .map(|p| p.database.id);
            (e.database.id, e.database.handle.as_str(), primary)
        })
        .collect();
    for i in database_order(&dbs) {
        let e = &inventory.databases[i];
        let d = &e.database;
        let mut notes = Vec::new();
        if let Some(p) = dbs[i]
            .2
            .and_then(|p| inventory.databases.iter().find(|x| x.database.id == p))
        {
            notes.push(format!("a replica of {}: removed first", p.database.handle));
        }
        notes.push(
            "its automatic backups go with it; a final backup may be kept (purged below)"
                .to_owned(),
        );
        steps.push(Step {
            key: format!("database:{}", d.id),
            kind: StepKind::Database,
            id: d.id,
            resource: format!("database {} (#{}, {})", d.handle, d.id, d.kind),
            request: operation_request(
                &d.links,
                &format!("/databases/{}/operations", d.id),
                "deprovision",
            ),
            notes,
            done: false,
            target: Resource::Database(d.clone()),
        });
    }
    let orphaned: Vec<u64> = inventory.orphaned_backups.iter().map(|b| b.id).collect();
    for b in backup_order(&inventory.backups) {
        steps.push(backup_step(&b, orphaned.contains(&b.id)));
    }
    steps.push(environment_step(&inventory.environment.account));
    steps
}

/// The environment's step (`DELETE /accounts/{id}`).
#[must_use]
pub fn environment_step(account: &Account) -> Step {
    Step {
        key: format!("environment:{}", account.id),
        kind: StepKind::Environment,
        id: account.id,
        resource: format!("environment {} (#{})", account.handle, account.id),
        request: format!(
            "DELETE {}",
            path_of(
                account.links.href("self"),
                &format!("/accounts/{}", account.id)
            )
        ),
        notes: vec![
            "last, once the listing shows nothing else (the backups left by deprovisioned \
             databases are listed and purged first)"
                .to_owned(),
        ],
        done: false,
        target: Resource::Environment(account.clone()),
    }
}

/// Step 8 of the guide, which no API offers: what the user does by hand afterwards.
pub const STEP_8: &[&str] = &[
    "Step 8 (by hand): request the deletion of the account in the dashboard's organization \
     settings. The request needs the organization's name and a reason.",
    "A final invoice follows for the usage up to the deletion.",
    "Confirm on the estimated-costs page that nothing is billed any more.",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_come_before_their_primaries() {
        let dbs = [
            (100, "main-db", None),
            (101, "main-db-replica", Some(100)),
            (102, "a-replica-of-the-replica", Some(101)),
            (110, "shop", None),
            (120, "cache", None),
        ];
        let order: Vec<&str> = database_order(&dbs).iter().map(|&i| dbs[i].1).collect();
        assert_eq!(
            order,
            [
                "a-replica-of-the-replica",
                "main-db-replica",
                "cache",
                "main-db",
                "shop"
            ]
        );
    }

    #[test]
    fn copies_are_purged_after_originals() {
        let b = |id: u64, copy: bool| -> Backup {
            serde_json::from_value(serde_json::json!({
                "id": id, "created_at": "2026-02-03T04:05:06.000Z",
                "_embedded": {"copied_from": if copy { serde_json::json!({"id": 1}) } else { serde_json::Value::Null }}
            }))
            .unwrap()
        };
        let order: Vec<u64> = backup_order(&[b(1, false), b(2, true), b(3, false)])
            .iter()
            .map(|b| b.id)
            .collect();
        assert_eq!(order, [1, 3, 2]);
        let step = backup_step(&b(2, true), true);
        assert_eq!(step.key, "backup:2");
        assert_eq!(
            step.resource,
            "backup #2 (automatic, copy, orphaned, taken 2026-02-03T04:05:06.000Z)"
        );
        assert_eq!(
            step.request,
            r#"POST /backups/2/operations {"type":"purge"}"#
        );
    }
}
