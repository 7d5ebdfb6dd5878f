//! Progress bars (indicatif) for long work on a terminal: one bar per running task — a
//! database being dumped, an archive being read back or restored — and an overall bar over
//! the tasks of the command. The command layer's `Progress` implementations drive them from
//! the services' events; lines are still written through [`super::Ui`], above the bars.

use std::collections::BTreeMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::Ui;

/// The bars of one command. Every bar is removed from the terminal when its task ends and
/// when this value is dropped (an error or an interrupt leaves no half-drawn bar behind).
#[derive(Debug)]
pub struct TaskBars {
    multi: &'static MultiProgress,
    colour: bool,
    /// Columns for the task labels, so bars line up.
    label_width: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Running tasks by key, in the order they started.
    tasks: BTreeMap<String, ProgressBar>,
    overall: Option<ProgressBar>,
}

/// What a task bar shows besides bytes: its size is known (a bar with a rate and an ETA) or
/// not (a spinner with a rate). Labels take `width` columns.
fn task_style(colour: bool, sized: bool, width: usize) -> ProgressStyle {
    let (label, bar, spinner) = if colour {
        (".bold", ".cyan/blue", ".cyan")
    } else {
        ("", "", "")
    };
    let template = if sized {
        format!(
            "  {{prefix:{width}{label}}} {{bar:24{bar}}} {{bytes}}/{{total_bytes}} \
             {{binary_bytes_per_sec}} eta {{eta}} {{wide_msg}}"
        )
    } else {
        format!(
            "  {{prefix:{width}{label}}} {{spinner{spinner}}} {{bytes}} {{binary_bytes_per_sec}} \
             {{elapsed}} {{wide_msg}}"
        )
    };
    ProgressStyle::with_template(&template)
        .expect("a valid template")
        .progress_chars("=> ")
}

fn overall_style(colour: bool) -> ProgressStyle {
    let template = if colour {
        "{prefix:.bold} {bar:24.green} {pos}/{len} {wide_msg} {elapsed}"
    } else {
        "{prefix} {bar:24} {pos}/{len} {wide_msg} {elapsed}"
    };
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
}

impl TaskBars {
    /// The bars of a command, if `ui` draws bars (text on a terminal, not `--quiet`).
    #[must_use]
    pub fn new(ui: Ui) -> Option<Self> {
        Some(Self {
            multi: ui.multi()?,
            colour: ui.colour(),
            label_width: 0,
            state: Mutex::new(State::default()),
        })
    }

    /// The same bars with labels padded to the longest of `labels` (at most 24 columns), so
    /// the bars of tasks known in advance line up.
    #[must_use]
    pub fn aligned<'a>(mut self, labels: impl IntoIterator<Item = &'a str>) -> Self {
        self.label_width = labels.into_iter().map(str::len).max().unwrap_or(0).min(24);
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Show (or replace) the overall bar: `label`, `total` steps, `message` after the count.
    /// Nothing for fewer than two steps: one task's bar says it all.
    pub fn overall(&self, label: &str, total: u64, message: &str) {
        let mut state = self.state();
        if let Some(old) = state.overall.take() {
            old.finish_and_clear();
        }
        if total < 2 {
            return;
        }
        let bar = self.multi.add(
            ProgressBar::new(total)
                .with_style(overall_style(self.colour))
                .with_prefix(label.to_owned())
                .with_message(message.to_owned()),
        );
        bar.tick();
        state.overall = Some(bar);
    }

    /// The overall bar's message (totals so far).
    pub fn overall_message(&self, message: String) {
        if let Some(bar) = &self.state().overall {
            bar.set_message(message);
        }
    }

    /// One step of the overall bar done; the bar goes once every step is.
    pub fn step(&self) {
        let mut state = self.state();
        if let Some(bar) = &state.overall {
            bar.inc(1);
            if bar.position() >= bar.length().unwrap_or(0) {
                bar.finish_and_clear();
                state.overall = None;
            }
        }
    }

    /// Start a task's bar: `key` identifies it in later calls, `label` is shown before it,
    /// `total` is its size in bytes when known, `message` what it does for now.
    pub fn start(&self, key: &str, label: &str, total: Option<u64>, message: &str) {
        let bar = ProgressBar::new(total.unwrap_or(0))
            .with_style(task_style(self.colour, total.is_some(), self.label_width))
            .with_prefix(label.to_owned())
            .with_message(message.to_owned());
        let mut state = self.state();
        // Above the overall bar, which stays last.
        let bar = match &state.overall {
            Some(overall) => self.multi.insert_before(overall, bar),
            None => self.multi.add(bar),
        };
        bar.tick();
        if let Some(old) = state.tasks.insert(key.to_owned(), bar) {
            old.finish_and_clear();
        }
    }

    /// A task moved: `bytes` done so far of `total` (an estimate may be exceeded: the bar's
    /// length grows to it then), and what it does now.
    pub fn update(&self, key: &str, bytes: u64, total: Option<u64>, message: String) {
        let state = self.state();
        let Some(bar) = state.tasks.get(key) else {
            return;
        };
        match total {
            Some(total) => {
                if bar.length().unwrap_or(0) == 0 {
                    bar.set_style(task_style(self.colour, true, self.label_width));
                }
                bar.set_length(total.max(bytes));
            }
            None => bar.tick(),
        }
        bar.set_message(message);
        bar.set_position(bytes);
    }

    /// A task ended: its bar goes (its outcome is a line above the bars).
    pub fn finish(&self, key: &str) {
        if let Some(bar) = self.state().tasks.remove(key) {
            bar.finish_and_clear();
        }
    }

    /// Remove every bar.
    pub fn clear(&self) {
        let mut state = self.state();
        for (_, bar) in std::mem::take(&mut state.tasks) {
            bar.finish_and_clear();
        }
        if let Some(bar) = state.overall.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for TaskBars {
    fn drop(&mut self) {
        self.clear();
    }
}
