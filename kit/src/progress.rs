//! Progress of long command-line work (`projector rebuild …`, `admin-api apply`): how much of
//! the total is done, the rate, and the time left, redrawn in place on a terminal.
//!
//! [`Meter`] decides what to draw and when, from instants it is given, so its formatting and
//! throttling are tested without a clock. [`Progress`] puts its lines on stderr, and only when
//! stderr is a terminal: piped into a file or a script, it writes nothing, and what the caller
//! prints itself (a summary line, with [`Finished`] in it) is all that appears. A progress line
//! starts with `\r` and is padded over the one before; it is drawn at most every
//! [`REDRAW_INTERVAL`], and not at all for work that ends within the first one.

use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// The least time between two redraws (four a second at most).
pub const REDRAW_INTERVAL: Duration = Duration::from_millis(250);

/// What is done of a known total, and the line that shows it. Pure: every instant is passed in.
#[derive(Debug, Clone)]
pub struct Meter {
    label: String,
    unit: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    last_drawn: Option<Instant>,
    drawn_width: usize,
}

impl Meter {
    /// A meter for `total` `unit`s (`"events"`, `"entries"`), started at `started`.
    #[must_use]
    pub fn new(label: impl Into<String>, unit: &'static str, total: u64, started: Instant) -> Self {
        Self {
            label: label.into(),
            unit,
            total,
            done: 0,
            started,
            last_drawn: None,
            drawn_width: 0,
        }
    }

    /// How much is done.
    #[must_use]
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Records that `done` units are done at `now`, and returns what to write to redraw the
    /// line (`\r`, the line, padding over a longer previous one), or `None` while the last
    /// draw, or the start, is less than [`REDRAW_INTERVAL`] ago.
    pub fn advance_to(&mut self, done: u64, now: Instant) -> Option<String> {
        self.done = done;
        let since = now.saturating_duration_since(self.last_drawn.unwrap_or(self.started));
        if since < REDRAW_INTERVAL {
            return None;
        }
        let line = self.line(now);
        let width = line.chars().count();
        let padding = self.drawn_width.saturating_sub(width);
        self.last_drawn = Some(now);
        self.drawn_width = width;
        Some(format!("\r{line}{}", " ".repeat(padding)))
    }

    /// The progress line at `now`: `label 300/1000 events (30%), 120/s, 5.8s left`.
    #[must_use]
    pub fn line(&self, now: Instant) -> String {
        let elapsed = now.saturating_duration_since(self.started);
        let mut line = format!("{} {}/{} {}", self.label, self.done, self.total, self.unit);
        if self.total > 0 {
            let percent = u128::from(self.done.min(self.total)) * 100 / u128::from(self.total);
            line.push_str(&format!(" ({percent}%)"));
        }
        if let Some(rate) = rate(self.done, elapsed) {
            line.push_str(&format!(", {}/s", Rate(rate)));
            let left = self.total.saturating_sub(self.done);
            if rate > 0.0 && left > 0 {
                let seconds_left = Duration::from_secs_f64(left as f64 / rate);
                line.push_str(&format!(", {} left", Elapsed(seconds_left)));
            }
        }
        line
    }

    /// What erases a drawn line (nothing if none was drawn), so a summary can take its place.
    #[must_use]
    pub fn erase(&self) -> String {
        if self.last_drawn.is_none() {
            return String::new();
        }
        format!("\r{}\r", " ".repeat(self.drawn_width))
    }

    /// The totals at `now`, for the caller's summary line.
    #[must_use]
    pub fn finish(&self, now: Instant) -> Finished {
        Finished {
            done: self.done,
            total: self.total,
            unit: self.unit,
            elapsed: now.saturating_duration_since(self.started),
        }
    }
}

/// How much was done of the total and how fast: `1500/1500 events in 2.1s, 714/s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finished {
    pub done: u64,
    pub total: u64,
    pub unit: &'static str,
    pub elapsed: Duration,
}

impl fmt::Display for Finished {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}/{} {} in {}",
            self.done,
            self.total,
            self.unit,
            Elapsed(self.elapsed)
        )?;
        if let Some(rate) = rate(self.done, self.elapsed) {
            write!(formatter, ", {}/s", Rate(rate))?;
        }
        Ok(())
    }
}

/// Units per second, unless no time has passed to measure it by.
fn rate(done: u64, elapsed: Duration) -> Option<f64> {
    (!elapsed.is_zero()).then(|| done as f64 / elapsed.as_secs_f64())
}

/// A rate with the precision it merits: `0.5`, `7.5`, `120`.
struct Rate(f64);

impl fmt::Display for Rate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 10.0 {
            write!(formatter, "{:.1}", self.0)
        } else {
            write!(formatter, "{:.0}", self.0)
        }
    }
}

/// A duration as a person reads it: `0.4s`, `42.0s`, `3m 07s`, `2h 05m`.
struct Elapsed(Duration);

impl fmt::Display for Elapsed {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.as_secs();
        if seconds < 60 {
            write!(formatter, "{:.1}s", self.0.as_secs_f64())
        } else if seconds < 3_600 {
            write!(formatter, "{}m {:02}s", seconds / 60, seconds % 60)
        } else {
            write!(
                formatter,
                "{}h {:02}m",
                seconds / 3_600,
                seconds % 3_600 / 60
            )
        }
    }
}

/// A [`Meter`] drawn on stderr when stderr is a terminal, and silent otherwise.
#[derive(Debug)]
pub struct Progress {
    meter: Meter,
    terminal: bool,
}

impl Progress {
    /// Progress over `total` `unit`s, drawn on stderr if it is a terminal.
    #[must_use]
    pub fn on_stderr(label: impl Into<String>, unit: &'static str, total: u64) -> Self {
        Self {
            meter: Meter::new(label, unit, total, Instant::now()),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Progress that is measured but never drawn, for work no terminal is watching (an HTTP
    /// request).
    #[must_use]
    pub fn hidden(label: impl Into<String>, unit: &'static str, total: u64) -> Self {
        Self {
            meter: Meter::new(label, unit, total, Instant::now()),
            terminal: false,
        }
    }

    /// Whether the lines are drawn (stderr is a terminal).
    #[must_use]
    pub fn is_drawn(&self) -> bool {
        self.terminal
    }

    /// Records that `done` units are done, redrawing the line if it is time to.
    pub fn advance_to(&mut self, done: u64) {
        if let Some(redraw) = self.meter.advance_to(done, Instant::now()) {
            self.write(&redraw);
        }
    }

    /// Records `more` units done.
    pub fn add(&mut self, more: u64) {
        self.advance_to(self.meter.done().saturating_add(more));
    }

    /// Erases the line and returns the totals for the caller's summary.
    pub fn finish(self) -> Finished {
        // Dropping `self` erases the line.
        self.meter.finish(Instant::now())
    }

    fn write(&self, text: &str) {
        if !self.terminal || text.is_empty() {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        // Progress is a courtesy: a terminal that refuses it must not fail the work.
        if stderr.write_all(text.as_bytes()).is_ok() {
            stderr.flush().ok();
        }
    }
}

/// Work that ends early (an error) leaves no half-drawn line for its error message to follow.
impl Drop for Progress {
    fn drop(&mut self) {
        self.write(&self.meter.erase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, milliseconds: u64) -> Instant {
        start + Duration::from_millis(milliseconds)
    }

    #[test]
    fn nothing_is_drawn_within_the_first_interval_so_quick_work_shows_only_its_summary() {
        let start = Instant::now();
        let mut meter = Meter::new("rebuild config: applying", "events", 5, start);
        assert_eq!(meter.advance_to(5, at(start, 10)), None);
        assert_eq!(meter.erase(), "");
        assert_eq!(
            meter.finish(at(start, 100)).to_string(),
            "5/5 events in 0.1s, 50/s"
        );
    }

    #[test]
    fn redraws_at_most_once_per_interval() {
        let start = Instant::now();
        let mut meter = Meter::new("reading", "events", 1_000, start);
        let drawn: Vec<u64> = (1..=20)
            .filter_map(|step| {
                // An update every 50 ms for a second: four redraws, at 250, 500, 750, 1000 ms.
                meter
                    .advance_to(step * 50, at(start, step * 50))
                    .map(|_| step * 50)
            })
            .collect();
        assert_eq!(drawn, vec![250, 500, 750, 1_000]);
    }

    #[test]
    fn the_line_shows_done_of_total_the_rate_and_the_time_left() {
        let start = Instant::now();
        let mut meter = Meter::new("rebuild analytics: reading", "events", 1_000, start);
        let line = meter.advance_to(300, at(start, 2_500));
        assert_eq!(
            line.as_deref(),
            Some("\rrebuild analytics: reading 300/1000 events (30%), 120/s, 5.8s left")
        );
    }

    #[test]
    fn a_shorter_line_is_padded_over_the_longer_one_before_and_erasing_blanks_it() {
        let start = Instant::now();
        let mut meter = Meter::new("x", "entries", 100_000, start);
        let first = meter.advance_to(1, at(start, 250)).unwrap();
        assert_eq!(first, "\rx 1/100000 entries (0%), 4.0/s, 6h 56m left");
        let second = meter.advance_to(100_000, at(start, 500)).unwrap();
        assert_eq!(second.chars().count(), first.chars().count());
        assert_eq!(
            second.trim_end(),
            "\rx 100000/100000 entries (100%), 200000/s"
        );
        // The padding already blanked the longer line's tail: erasing covers the last line.
        let last_width = second.trim_end().len() - 1;
        assert_eq!(meter.erase(), format!("\r{}\r", " ".repeat(last_width)));
    }

    #[test]
    fn durations_and_rates_read_plainly() {
        assert_eq!(Elapsed(Duration::from_millis(420)).to_string(), "0.4s");
        assert_eq!(Elapsed(Duration::from_secs(187)).to_string(), "3m 07s");
        assert_eq!(Elapsed(Duration::from_secs(7_500)).to_string(), "2h 05m");
        assert_eq!(Rate(7.46).to_string(), "7.5");
        assert_eq!(Rate(714.3).to_string(), "714");
    }

    #[test]
    fn an_empty_total_and_no_elapsed_time_still_format() {
        let start = Instant::now();
        let meter = Meter::new("apply", "entries", 0, start);
        assert_eq!(meter.line(start), "apply 0/0 entries");
        assert_eq!(meter.finish(start).to_string(), "0/0 entries in 0.0s");
    }

    #[test]
    fn hidden_progress_writes_nothing_and_still_counts() {
        let mut progress = Progress::hidden("apply", "entries", 3);
        progress.add(2);
        progress.add(1);
        assert!(!progress.is_drawn());
        assert_eq!(progress.finish().done, 3);
    }
}
