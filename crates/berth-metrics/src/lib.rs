//! Metrics in the Prometheus text exposition format (version 0.0.4):
//! a [`Text`] writer for families and samples, a fixed-bucket
//! [`Histogram`], and [`serve`], the daemon's `/metrics` listener, which
//! asks a gather function for the whole page at each scrape.
//!
//! Architecture invariant: this crate knows no other berth crate; each
//! capability writes its own families through [`Text`].

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The content type Prometheus asks for and parses.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A page being written: `# HELP` and `# TYPE` once per family, then its
/// samples.
#[derive(Default)]
pub struct Text(String);

#[derive(Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Text {
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        write_labels(&mut self.0, labels, None);
        let _ = writeln!(self.0, " {}", number(value));
    }

    /// A histogram's `_bucket`, `_sum` and `_count` samples.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let mut cumulative = 0;
        for (i, bound) in h.bounds.iter().enumerate() {
            cumulative += h.counts[i].load(Ordering::Relaxed);
            let _ = write!(self.0, "{name}_bucket");
            write_labels(&mut self.0, labels, Some(&number(*bound)));
            let _ = writeln!(self.0, " {cumulative}");
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = write!(self.0, "{name}_bucket");
        write_labels(&mut self.0, labels, Some("+Inf"));
        let _ = writeln!(self.0, " {count}");
        let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = write!(self.0, "{name}_sum");
        write_labels(&mut self.0, labels, None);
        let _ = writeln!(self.0, " {}", number(sum));
        let _ = write!(self.0, "{name}_count");
        write_labels(&mut self.0, labels, None);
        let _ = writeln!(self.0, " {count}");
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{k}=\"{}\"", escape(v));
    }
    out.push('}');
}

/// A label value as the format wants it: `\`, `"` and newlines escaped.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Request durations, in seconds.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counts of observations per bucket; lock-free to record.
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, secs: f64) {
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((secs.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }
}

/// Builds the whole page at each scrape.
pub type Gather = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves `GET /metrics` on `addr` until the task is aborted.
pub async fn serve(
    addr: SocketAddr,
    gather: Gather,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let gather = gather.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let gather = gather.clone();
                    async move { Ok::<_, std::convert::Infallible>(page(&req, &gather)) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    }))
}

fn page(req: &Request<hyper::body::Incoming>, gather: &Gather) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => (StatusCode::OK, CONTENT_TYPE, gather()),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET /metrics\n".into(),
        ),
        _ => (StatusCode::NOT_FOUND, "text/plain", "see /metrics\n".into()),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_histograms_are_written_as_prometheus_reads_them() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(3.0);
        let mut t = Text::default();
        t.family("x_seconds", Kind::Histogram, "How long.\nReally.");
        t.histogram("x_seconds", &[("route", "a\"b")], &h);
        t.family("up", Kind::Gauge, "Up.");
        t.sample("up", &[], 1.0);
        let text = t.into_string();
        let want = [
            "# HELP x_seconds How long.\\nReally.",
            "# TYPE x_seconds histogram",
            "x_seconds_bucket{route=\"a\\\"b\",le=\"0.1\"} 1",
            "x_seconds_bucket{route=\"a\\\"b\",le=\"1\"} 2",
            "x_seconds_bucket{route=\"a\\\"b\",le=\"+Inf\"} 3",
            "x_seconds_sum{route=\"a\\\"b\"} 3.55",
            "x_seconds_count{route=\"a\\\"b\"} 3",
            "# HELP up Up.",
            "# TYPE up gauge",
            "up 1",
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), want);
    }
}
