//! The Liquid language cairn offers, with a render budget around every tag, block and
//! filter.
//!
//! liquid has no timeout or size limit of its own. Every tag, block and filter of the
//! standard library is wrapped so that each time one runs it checks the budget of the
//! render in progress (elapsed time and output size), every filter's result is bounded in
//! size (so `append` doubling a string in a loop stops early), and the output goes through
//! a writer that refuses to grow past the part's limit, and to write after the time
//! budget is spent while a loop (`for`, `tablerow`) runs. Text written outside any loop
//! is written once per render, so it needs no clock: reading it there would be most of
//! the guard's cost. Ranges are bounded at parse time (`template.rs`), so a loop cannot
//! materialise a billion numbers before the first check.
//!
//! The budget lives in a thread-local set only while `render` runs ([`BudgetScope`]):
//! liquid renders synchronously on the caller's thread and gives plugins no other way to
//! reach per-render state. `std::time::Instant` is read here and only here — a safety net
//! against runaway templates, never an input to what is rendered.
//!
//! Also: `include` and `render` are left out (cairn templates have no partials), the
//! `date` filter reads "now" from the render context rather than the wall clock, and in
//! HTML parts `escape` behaves as `escape_once`, because data there is already escaped.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use liquid_core::parser::{FilterArguments, ParameterReflection};
use liquid_core::{
    BlockReflection, Filter, FilterReflection, Language, ParseBlock, ParseFilter, ParseTag, Renderable, Runtime,
    TagBlock, TagReflection, TagTokenIter, Value, ValueView,
};

use crate::context::template_time;

/// Why a render was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exceeded {
    Time,
    Size,
}

struct Budget {
    /// When the time budget runs out (`None`: a budget beyond what the clock can count,
    /// which never does).
    deadline: Option<Instant>,
    max_bytes: usize,
    /// The render context's `now`, for the `date` filter.
    now: Timestamp,
    exceeded: Option<Exceeded>,
    /// How many loops are running (one inside another): writes check the clock only then.
    loops: u32,
}

thread_local! {
    static BUDGET: RefCell<Option<Budget>> = const { RefCell::new(None) };
}

/// Sets the budget of one render on this thread; clears it when dropped.
pub(crate) struct BudgetScope(());

impl BudgetScope {
    pub(crate) fn start(time: Duration, max_bytes: usize, now: Timestamp) -> BudgetScope {
        let deadline = Instant::now().checked_add(time);
        BUDGET.with(|b| {
            *b.borrow_mut() = Some(Budget { deadline, max_bytes, now, exceeded: None, loops: 0 });
        });
        BudgetScope(())
    }

    /// Why the last failure was a budget stop, if it was; clears the mark.
    pub(crate) fn take_exceeded(&self) -> Option<Exceeded> {
        BUDGET.with(|b| b.borrow_mut().as_mut().and_then(|budget| budget.exceeded.take()))
    }
}

impl Drop for BudgetScope {
    fn drop(&mut self) {
        BUDGET.with(|b| *b.borrow_mut() = None);
    }
}

fn exceeded(why: Exceeded) -> liquid_core::Error {
    BUDGET.with(|b| {
        if let Some(budget) = b.borrow_mut().as_mut() {
            budget.exceeded.get_or_insert(why);
        }
    });
    liquid_core::Error::with_msg(match why {
        Exceeded::Time => "render time budget exceeded",
        Exceeded::Size => "render size limit exceeded",
    })
}

/// Checks the time budget; called before every tag, block and filter runs.
fn step() -> liquid_core::Result<()> {
    let deadline = BUDGET.with(|b| b.borrow().as_ref().and_then(|budget| budget.deadline));
    if deadline.is_some_and(|deadline| Instant::now() > deadline) { Err(exceeded(Exceeded::Time)) } else { Ok(()) }
}

/// Checks the time budget before a write, if a loop is running.
fn write_step() -> liquid_core::Result<()> {
    let deadline =
        BUDGET.with(|b| b.borrow().as_ref().filter(|budget| budget.loops > 0).and_then(|budget| budget.deadline));
    if deadline.is_some_and(|deadline| Instant::now() > deadline) { Err(exceeded(Exceeded::Time)) } else { Ok(()) }
}

/// Counts a loop in (`entering`) or out.
fn count_loop(entering: bool) {
    BUDGET.with(|b| {
        if let Some(budget) = b.borrow_mut().as_mut() {
            budget.loops = if entering { budget.loops.saturating_add(1) } else { budget.loops.saturating_sub(1) };
        }
    });
}

fn max_bytes() -> Option<usize> {
    BUDGET.with(|b| b.borrow().as_ref().map(|budget| budget.max_bytes))
}

/// The render context's `now` as templates see it.
fn now() -> Option<Value> {
    BUDGET.with(|b| b.borrow().as_ref().map(|budget| Value::scalar(template_time(budget.now))))
}

/// The output of one part: refuses to grow past `max` bytes, or to write inside a loop
/// after the time budget is spent.
pub(crate) struct LimitedWriter {
    pub(crate) buffer: Vec<u8>,
    max: usize,
}

impl LimitedWriter {
    /// A writer refusing to grow past `max` bytes, with room for `expected` bytes.
    pub(crate) fn with_capacity(max: usize, expected: usize) -> LimitedWriter {
        LimitedWriter { buffer: Vec::with_capacity(expected.min(max)), max }
    }
}

impl io::Write for LimitedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buffer.len().saturating_add(data.len()) > self.max {
            exceeded(Exceeded::Size);
            return Err(io::Error::other("render size limit exceeded"));
        }
        if write_step().is_err() {
            return Err(io::Error::other("render time budget exceeded"));
        }
        self.buffer.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
struct Guarded {
    inner: Box<dyn Renderable>,
    /// A `for` or `tablerow`: what it writes is checked against the clock.
    is_loop: bool,
}

impl Renderable for Guarded {
    fn render_to(&self, writer: &mut dyn io::Write, runtime: &dyn Runtime) -> liquid_core::Result<()> {
        step()?;
        if !self.is_loop {
            return self.inner.render_to(writer, runtime);
        }
        count_loop(true);
        let rendered = self.inner.render_to(writer, runtime);
        count_loop(false);
        rendered
    }
}

#[derive(Clone)]
struct GuardedTag(Box<dyn ParseTag>);

impl ParseTag for GuardedTag {
    fn parse(&self, arguments: TagTokenIter<'_>, options: &Language) -> liquid_core::Result<Box<dyn Renderable>> {
        Ok(Box::new(Guarded { inner: self.0.parse(arguments, options)?, is_loop: false }))
    }

    fn reflection(&self) -> &dyn TagReflection {
        self.0.reflection()
    }
}

#[derive(Clone)]
struct GuardedBlock(Box<dyn ParseBlock>);

impl ParseBlock for GuardedBlock {
    fn parse(
        &self,
        arguments: TagTokenIter<'_>,
        block: TagBlock<'_, '_>,
        options: &Language,
    ) -> liquid_core::Result<Box<dyn Renderable>> {
        let is_loop = matches!(self.0.reflection().start_tag(), "for" | "tablerow");
        Ok(Box::new(Guarded { inner: self.0.parse(arguments, block, options)?, is_loop }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self.0.reflection()
    }
}

/// A filter under a name of our choosing (`escape` running `escape_once`).
#[derive(Clone)]
struct Renamed {
    name: &'static str,
    inner: Box<dyn ParseFilter>,
}

impl FilterReflection for Renamed {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        self.inner.reflection().description()
    }

    fn positional_parameters(&self) -> &'static [ParameterReflection] {
        self.inner.reflection().positional_parameters()
    }

    fn keyword_parameters(&self) -> &'static [ParameterReflection] {
        self.inner.reflection().keyword_parameters()
    }
}

#[derive(Clone)]
struct GuardedFilter {
    inner: Box<dyn ParseFilter>,
    renamed: Option<Renamed>,
}

impl ParseFilter for GuardedFilter {
    fn parse(&self, arguments: FilterArguments<'_>) -> liquid_core::Result<Box<dyn Filter>> {
        let is_date = self.reflection().name() == "date";
        Ok(Box::new(GuardedFilterRun { inner: self.inner.parse(arguments)?, is_date }))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        match &self.renamed {
            Some(renamed) => renamed,
            None => self.inner.reflection(),
        }
    }
}

#[derive(Debug)]
struct GuardedFilterRun {
    inner: Box<dyn Filter>,
    is_date: bool,
}

impl fmt::Display for GuardedFilterRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl Filter for GuardedFilterRun {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> liquid_core::Result<Value> {
        step()?;
        // liquid's `date` reads the wall clock for "now" and "today"; cairn's clock is the
        // render context's `now`.
        let wall_clock_word = self.is_date
            && input.as_scalar().is_some_and(|s| matches!(s.to_kstr().trim().to_lowercase().as_str(), "now" | "today"));
        // Calendar dates (`renewal_date`: `2026-03-10`) are midnight UTC of that day: liquid
        // only reads dates with a time.
        let calendar_date = self
            .is_date
            .then(|| input.as_scalar().map(|s| s.to_kstr().trim().to_string()))
            .flatten()
            .filter(|s| s.parse::<jiff::civil::Date>().is_ok() && s.len() == 10)
            .map(|s| Value::scalar(format!("{s} 00:00:00 +0000")));
        let now = if wall_clock_word { now() } else { None };
        let result = match (now, calendar_date) {
            (Some(now), _) => self.inner.evaluate(&now, runtime)?,
            (None, Some(day)) => self.inner.evaluate(&day, runtime)?,
            (None, None) => self.inner.evaluate(input, runtime)?,
        };
        if let Some(max) = max_bytes() {
            let size = match &result {
                Value::Scalar(s) => s.to_kstr().len(),
                Value::Array(items) => items.len(),
                Value::Object(fields) => fields.len(),
                _ => 0,
            };
            if size > max {
                return Err(exceeded(Exceeded::Size));
            }
        }
        Ok(result)
    }
}

/// The Liquid language of cairn templates (see [`build_parser`]), built once per process
/// for HTML and once for the other parts: building it registers some sixty plugins, which
/// costs more than parsing a typical template.
pub(crate) fn parser(html: bool) -> Result<&'static liquid::Parser, String> {
    static PLAIN: OnceLock<Result<liquid::Parser, String>> = OnceLock::new();
    static HTML: OnceLock<Result<liquid::Parser, String>> = OnceLock::new();
    let cell = if html { &HTML } else { &PLAIN };
    cell.get_or_init(|| build_parser(html).map_err(|e| e.to_string())).as_ref().map_err(Clone::clone)
}

/// The Liquid language of cairn templates: the standard tags, blocks and filters, guarded.
/// `html` makes `escape` behave as `escape_once`.
fn build_parser(html: bool) -> Result<liquid::Parser, liquid::Error> {
    use liquid_lib::stdlib;
    let tags: Vec<Box<dyn ParseTag>> = vec![
        Box::new(stdlib::AssignTag),
        Box::new(stdlib::BreakTag),
        Box::new(stdlib::ContinueTag),
        Box::new(stdlib::CycleTag),
        Box::new(stdlib::IncrementTag),
        Box::new(stdlib::DecrementTag),
    ];
    let blocks: Vec<Box<dyn ParseBlock>> = vec![
        Box::new(stdlib::RawBlock),
        Box::new(stdlib::IfBlock),
        Box::new(stdlib::UnlessBlock),
        Box::new(stdlib::IfChangedBlock),
        Box::new(stdlib::ForBlock),
        Box::new(stdlib::TableRowBlock),
        Box::new(stdlib::CommentBlock),
        Box::new(stdlib::CaptureBlock),
        Box::new(stdlib::CaseBlock),
    ];
    let filters: Vec<Box<dyn ParseFilter>> = vec![
        Box::new(stdlib::Abs),
        Box::new(stdlib::Append),
        Box::new(stdlib::AtLeast),
        Box::new(stdlib::AtMost),
        Box::new(stdlib::Capitalize),
        Box::new(stdlib::Ceil),
        Box::new(stdlib::Compact),
        Box::new(stdlib::Concat),
        Box::new(stdlib::Date),
        Box::new(stdlib::Default),
        Box::new(stdlib::DividedBy),
        Box::new(stdlib::Downcase),
        Box::new(stdlib::EscapeOnce),
        Box::new(stdlib::First),
        Box::new(stdlib::Floor),
        Box::new(stdlib::Join),
        Box::new(stdlib::Last),
        Box::new(stdlib::Lstrip),
        Box::new(stdlib::Map),
        Box::new(stdlib::Minus),
        Box::new(stdlib::Modulo),
        Box::new(stdlib::NewlineToBr),
        Box::new(stdlib::Plus),
        Box::new(stdlib::Prepend),
        Box::new(stdlib::Remove),
        Box::new(stdlib::RemoveFirst),
        Box::new(stdlib::Replace),
        Box::new(stdlib::ReplaceFirst),
        Box::new(stdlib::Reverse),
        Box::new(stdlib::Round),
        Box::new(stdlib::Rstrip),
        Box::new(stdlib::Size),
        Box::new(stdlib::Slice),
        Box::new(stdlib::Sort),
        Box::new(stdlib::SortNatural),
        Box::new(stdlib::Split),
        Box::new(stdlib::Strip),
        Box::new(stdlib::StripHtml),
        Box::new(stdlib::StripNewlines),
        Box::new(stdlib::Times),
        Box::new(stdlib::Truncate),
        Box::new(stdlib::TruncateWords),
        Box::new(stdlib::Uniq),
        Box::new(stdlib::Upcase),
        Box::new(stdlib::UrlDecode),
        Box::new(stdlib::UrlEncode),
        Box::new(stdlib::Where),
    ];
    let mut builder = liquid::ParserBuilder::new();
    for tag in tags {
        builder = builder.tag(GuardedTag(tag));
    }
    for block in blocks {
        builder = builder.block(GuardedBlock(block));
    }
    for filter in filters {
        builder = builder.filter(GuardedFilter { inner: filter, renamed: None });
    }
    let escape: Box<dyn ParseFilter> = if html { Box::new(stdlib::EscapeOnce) } else { Box::new(stdlib::Escape) };
    let renamed = Renamed { name: "escape", inner: escape.clone() };
    builder = builder.filter(GuardedFilter { inner: escape, renamed: Some(renamed) });
    builder.build()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn writes_check_the_clock_only_inside_loops() {
        let scope = BudgetScope::start(Duration::ZERO, 1024, Timestamp::UNIX_EPOCH);
        // Past the deadline, without sleeping: the clock has moved once it reads later.
        let started = Instant::now();
        while Instant::now() <= started {}
        let mut writer = LimitedWriter::with_capacity(1024, 0);
        assert!(writer.write(b"once per render").is_ok());
        assert_eq!(scope.take_exceeded(), None);
        count_loop(true);
        assert!(writer.write(b"again and again").is_err());
        assert_eq!(scope.take_exceeded(), Some(Exceeded::Time));
        count_loop(false);
        assert!(writer.write(b"after the loop").is_ok());
        assert_eq!(writer.buffer, b"once per renderafter the loop");
    }

    #[test]
    fn writes_never_pass_the_size_limit() {
        let scope = BudgetScope::start(Duration::from_secs(60), 8, Timestamp::UNIX_EPOCH);
        let mut writer = LimitedWriter::with_capacity(8, 100);
        assert!(writer.write(b"12345678").is_ok());
        assert!(writer.write(b"9").is_err());
        assert_eq!(scope.take_exceeded(), Some(Exceeded::Size));
    }
}
