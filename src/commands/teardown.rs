//! `exporter teardown`: the plan (no side effects), and with `--apply` the gate, the
//! confirmation and the executor (issue 14). The service is [`crate::teardown`]; this module
//! renders the plan, asks for the environment's handle on a terminal when `--confirm` is
//! absent, and prints the report's location (or with `--json` the plan or the report).

use std::sync::Arc;

use exporter_aptible::PollOptions;

use crate::cleanup::Cleanup;
use crate::output::{self, Ui, human_bytes};
use crate::platform;
use crate::progress::{Event, Progress};
use crate::settings::TeardownOptions;
use crate::storage;
use crate::teardown::{self, Gate, Status, TeardownError, TeardownPlan};

struct TeardownProgress {
    ui: Ui,
}

impl Progress for TeardownProgress {
    fn event(&self, event: &Event) {
        if self.ui.event_json(event) {
            return;
        }
        match event {
            Event::RunSkipped { run_id, reason } => {
                self.ui
                    .problem(format!("note: skipping run {run_id}: {reason}"));
            }
            Event::TeardownStepStarted { resource, request } => {
                self.ui.info(format!("  {resource}: {request}"));
            }
            Event::TeardownStepFinished { resource, outcome } => {
                self.ui.info(format!("  {resource}: {outcome}"));
            }
            _ => {}
        }
    }
}

/// Show the plan, or with `--apply` run it behind the gate.
///
/// # Errors
///
/// [`TeardownError`]: the platform or the destination cannot be read, the gate refuses (exit
/// 1, naming each gap), the confirmation is wrong (exit 1) or cannot be asked (exit 2), a step
/// fails (exit 3, naming it); the destination's [`storage::OpenError`].
pub async fn run(
    options: &TeardownOptions,
    json: bool,
    ui: Ui,
    cleanup: &Cleanup,
    program: &str,
) -> anyhow::Result<()> {
    let client = platform::client(&options.platform)?;
    let storage = storage::open(&options.destination, cleanup).await?;
    let progress = Arc::new(TeardownProgress { ui });
    let assessment = teardown::assess(&client, storage, options, progress.clone()).await?;
    let plan = &assessment.plan;
    if !options.apply {
        if json {
            ui.data(serde_json::to_string_pretty(plan).expect("the plan serializes"));
        } else {
            for line in render_plan(plan, program) {
                ui.data(line);
            }
        }
        return Ok(());
    }
    for line in render_plan(plan, program) {
        ui.info(line);
    }
    if !plan.ready() {
        return Err(TeardownError::Refused {
            environment: plan.environment.clone(),
            gaps: plan.missing.clone(),
        }
        .into());
    }
    let confirmation = if let Some(c) = &options.confirm {
        c.clone()
    } else {
        let downgrade = if plan.downgraded {
            " (DOWNGRADE: archives verified only at level decompress)"
        } else {
            ""
        };
        output::prompt_line(&format!(
            "This deletes everything listed above and the environment itself{downgrade}.\n\
             Type the environment's handle ({}) to go on: ",
            plan.environment
        ))
        .map_err(|_| TeardownError::NoConfirmation)?
    };
    let gate = Gate::new(assessment).check(&confirmation).await?;
    let run_location = format!(
        "{}/{}",
        gate.assessment().plan.destination,
        gate.assessment().plan.journal_run.as_deref().unwrap_or("-")
    );
    ui.info(format!(
        "gate passed; tearing down environment {} (journal: {run_location}/{})",
        gate.assessment().plan.environment,
        crate::archive::JOURNAL_FILE
    ));
    let report = teardown::execute(gate, &client, &PollOptions::default(), progress).await?;
    if let Some(f) = &report.final_listing {
        ui.info(format!(
            "environment {} deleted; the listing before its deletion was empty, and it is {}",
            report.environment,
            if f.environment_listed_after {
                "STILL LISTED"
            } else {
                "no longer listed"
            }
        ));
    }
    for line in &report.remaining_manual_action {
        ui.info(line);
    }
    if json {
        ui.data(String::from_utf8_lossy(&report.to_json()).trim_end());
    } else {
        ui.data(format!("{run_location}/{}", crate::archive::REPORT_MD_FILE));
    }
    Ok(())
}

/// The plan in words: the gate's requirements, each database's coverage, the steps in order,
/// what is missing.
fn render_plan(plan: &TeardownPlan, program: &str) -> Vec<String> {
    let mut out = vec![format!(
        "teardown of environment {} (#{}): each database needs an archive under {} verified \
         at level {} and at most {} old",
        plan.environment,
        plan.environment_id,
        plan.destination,
        plan.required_level,
        teardown::coverage::human_age(std::time::Duration::from_secs(plan.max_age_seconds))
    )];
    for n in &plan.notes {
        out.push(n.clone());
    }
    out.push("databases:".to_owned());
    for d in &plan.coverage.databases {
        let what = match &d.status {
            Status::Covered { archive: a } => format!(
                "covered by {}/{} ({}, sha256 {}), dumped {} ({}), verified at level {} on {}: ok",
                a.run_id,
                a.file,
                human_bytes(a.compressed_bytes),
                a.sha256,
                a.dumped_at.format("%Y-%m-%d %H:%M:%SZ"),
                a.origin,
                a.verification.level,
                a.verification.verified_at.format("%Y-%m-%d %H:%M:%SZ"),
            ),
            Status::CoveredByPrimary { primary } => {
                format!("a replica, covered by its primary {primary}")
            }
            Status::RestoredCopy { source } => {
                format!("restored by this tool from a backup of {source}: needs no archive")
            }
            Status::AcceptedUnexported => {
                "NOT EXPORTED: loss accepted (--accept-unexported)".to_owned()
            }
            Status::Gap { reason } => format!("NOT COVERED: {reason}"),
        };
        out.push(format!("  {} ({}): {what}", d.handle, d.database_type));
    }
    out.push("steps, in order:".to_owned());
    for (i, s) in plan.steps.iter().enumerate() {
        let done = if s.done { " [done earlier]" } else { "" };
        out.push(format!(
            "  {:>2}. {}: {}{done}",
            i + 1,
            s.resource,
            s.request
        ));
        for n in &s.notes {
            out.push(format!("      {n}"));
        }
    }
    out.push(format!("  then: {}", teardown::plan::STEP_8.join(" ")));
    if plan.ready() {
        // The command to copy, complete: the same environment and destination, the program
        // as it was started.
        out.push(format!(
            "ready: `{program} teardown --environment {env} --to {dest} --apply --confirm {env}` runs these steps",
            env = plan.environment,
            dest = plan.destination,
        ));
    } else {
        out.push("missing before --apply:".to_owned());
        for m in &plan.missing {
            out.push(format!("  - {m}"));
        }
    }
    out
}
