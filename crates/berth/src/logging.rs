//! The daemon's log: plain lines on stderr (`berth.log` when started in the
//! background), colour only on a terminal; under systemd, when stderr is the
//! journal (`$JOURNAL_STREAM` names it), lines carry sd-daemon's `<N>`
//! priority prefix and no timestamp, since the journal adds its own.

use std::fmt;
use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

const DEFAULT_FILTER: &str = "info,openraft=warn,hickory_server=warn,hickory_proto=warn";

/// Whether stderr is the stream `$JOURNAL_STREAM` (`device:inode`) names.
pub fn stderr_is_journal() -> bool {
    let Some(want) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    want.to_string_lossy() == format!("{}:{}", meta.dev(), meta.ino())
}

/// Installs the global subscriber. `BERTH_LOG` overrides the filter.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| DEFAULT_FILTER.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if stderr_is_journal() {
        builder.event_format(Journal).init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// `<priority>target: message fields`, as journald parses stderr lines.
struct Journal;

impl<S, N> FormatEvent<S, N> for Journal
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let prio = match *meta.level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        write!(w, "<{prio}>{}: ", meta.target())?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}
