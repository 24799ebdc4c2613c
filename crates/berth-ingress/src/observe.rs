//! What the ingress tells about the requests it served: per-route counters
//! and a latency histogram for the daemon's `/metrics`, and an access log
//! in the combined log format (Apache's and nginx's default), off unless
//! `--ingress-access-log` names a file (or `-`, standard output).
//!
//! A request is recorded when its answer's body is done, so the latency
//! and the byte count are the whole exchange's.

use berth_metrics::{Histogram, Kind, Text, LATENCY_BOUNDS};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One route's counters; `route` is empty for requests that matched none.
pub struct RouteMetrics {
    route: String,
    service: String,
    /// Counts of [`COMMON_CODES`], taken without a lock by every request.
    common: [AtomicU64; COMMON_CODES.len()],
    other_codes: Mutex<BTreeMap<u16, u64>>,
    backend_errors: AtomicU64,
    latency: Histogram,
}

/// The status codes counted in atomics; the rare others behind a lock.
const COMMON_CODES: [u16; 16] = [
    200, 201, 204, 206, 301, 302, 304, 400, 401, 403, 404, 413, 500, 502, 503, 504,
];

/// Read-mostly: a request takes a read lock once its route was seen.
pub struct Observer {
    /// By a hash of (route, service).
    routes: RwLock<HashMap<u64, Arc<RouteMetrics>>>,
    unrouted: Arc<RouteMetrics>,
    log: Option<Mutex<mpsc::SyncSender<String>>>,
    /// Access log lines dropped because the writer fell behind.
    dropped: Arc<AtomicU64>,
}

/// Lines the access log may hold before it drops, rather than let a slow
/// disk take the proxy's memory.
const LOG_BACKLOG: usize = 65_536;

/// A request being served, recorded once dropped.
pub struct Exchange {
    pub metrics: Arc<RouteMetrics>,
    started: Instant,
    when: SystemTime,
    client: IpAddr,
    request_line: String,
    referer: String,
    agent: String,
    pub status: u16,
    bytes: u64,
    log: Option<(mpsc::SyncSender<String>, Arc<AtomicU64>)>,
}

fn route_key(host: &str, path: &str, service: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    (host, path, service).hash(&mut h);
    h.finish()
}

impl Observer {
    /// With `log`, the access log is appended to that file (`-`: stdout)
    /// by a thread of its own, so a slow disk never holds a request.
    pub fn new(log: Option<PathBuf>) -> std::io::Result<Observer> {
        let log = match log {
            None => None,
            Some(path) => {
                let mut out: Box<dyn Write + Send> = if path.as_os_str() == "-" {
                    Box::new(std::io::stdout())
                } else {
                    Box::new(
                        std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&path)?,
                    )
                };
                let (tx, rx) = mpsc::sync_channel::<String>(LOG_BACKLOG);
                std::thread::Builder::new()
                    .name("ingress-access-log".into())
                    .spawn(move || {
                        while let Ok(line) = rx.recv() {
                            let mut batch = line;
                            while let Ok(more) = rx.try_recv() {
                                batch.push_str(&more);
                            }
                            if let Err(e) =
                                out.write_all(batch.as_bytes()).and_then(|_| out.flush())
                            {
                                tracing::warn!("ingress access log: {e}");
                            }
                        }
                    })?;
                Some(Mutex::new(tx))
            }
        };
        Ok(Observer {
            routes: RwLock::default(),
            unrouted: Arc::new(RouteMetrics::new("", "")),
            log,
            dropped: Arc::default(),
        })
    }

    /// Where requests that match no route are counted.
    pub fn unrouted(&self) -> Arc<RouteMetrics> {
        self.unrouted.clone()
    }

    /// The counters of `host` + `path`'s route to `service`.
    pub fn route(&self, host: &str, path: &str, service: &str) -> Arc<RouteMetrics> {
        crate::read_mostly(&self.routes, route_key(host, path, service), || {
            RouteMetrics::new(&format!("{host}{path}"), service)
        })
    }

    /// [`Observer::route`] for `r`, kept in the route.
    pub fn route_of(&self, r: &crate::table::Route) -> Arc<RouteMetrics> {
        r.ties
            .metrics
            .get_or_init(|| self.route(&r.host.host, &r.host.path, &r.service))
            .clone()
    }

    /// Drops the series of routes no longer in `table`: a route that comes
    /// back starts from zero, which Prometheus reads as a counter reset.
    pub fn forget_absent(&self, table: &crate::table::Table) {
        let keys: std::collections::HashSet<u64> = table
            .routes()
            .iter()
            .map(|r| route_key(&r.host.host, &r.host.path, &r.service))
            .collect();
        self.routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| keys.contains(k));
    }

    pub fn start(
        &self,
        metrics: Arc<RouteMetrics>,
        client: IpAddr,
        req: &hyper::Request<hyper::body::Incoming>,
    ) -> Exchange {
        let header = |n: hyper::header::HeaderName| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string()
        };
        let log = self.log.as_ref().map(|l| {
            let tx = l.lock().unwrap_or_else(|e| e.into_inner()).clone();
            (tx, self.dropped.clone())
        });
        Exchange {
            metrics,
            started: Instant::now(),
            // Read only for the log; the clock is not free.
            when: if log.is_some() {
                SystemTime::now()
            } else {
                UNIX_EPOCH
            },
            client: client.to_canonical(),
            request_line: if log.is_some() {
                format!(
                    "{} {} {:?}",
                    req.method(),
                    req.uri().path_and_query().map_or("/", |p| p.as_str()),
                    req.version()
                )
            } else {
                String::new()
            },
            referer: if log.is_some() {
                header(hyper::header::REFERER)
            } else {
                String::new()
            },
            agent: if log.is_some() {
                header(hyper::header::USER_AGENT)
            } else {
                String::new()
            },
            status: 0,
            bytes: 0,
            log,
        }
    }

    /// The ingress's families, for the daemon's `/metrics`.
    pub fn write(&self, t: &mut Text) {
        let routes: Vec<((String, String), Arc<RouteMetrics>)> = {
            let g = self.routes.read().unwrap_or_else(|e| e.into_inner());
            let mut v: Vec<_> = std::iter::once(&self.unrouted)
                .chain(g.values())
                .map(|m| ((m.route.clone(), m.service.clone()), m.clone()))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        t.family(
            "berth_ingress_requests_total",
            Kind::Counter,
            "Requests the ingress answered, by route, service and status code.",
        );
        for ((route, service), m) in &routes {
            for (code, n) in m.codes() {
                let code = code.to_string();
                let labels = [
                    ("route", route.as_str()),
                    ("service", service.as_str()),
                    ("code", &code),
                ];
                t.sample("berth_ingress_requests_total", &labels, n as f64);
            }
        }
        t.family(
            "berth_ingress_backend_errors_total",
            Kind::Counter,
            "Backend attempts that failed before an answer (refused, reset, timed out).",
        );
        for ((route, service), m) in &routes {
            let labels = [("route", route.as_str()), ("service", service.as_str())];
            let n = m.backend_errors.load(Ordering::Relaxed);
            t.sample("berth_ingress_backend_errors_total", &labels, n as f64);
        }
        t.family(
            "berth_ingress_access_log_dropped_total",
            Kind::Counter,
            "Access log lines dropped because the log's writer fell behind.",
        );
        let dropped = self.dropped.load(Ordering::Relaxed) as f64;
        t.sample("berth_ingress_access_log_dropped_total", &[], dropped);
        t.family(
            "berth_ingress_request_duration_seconds",
            Kind::Histogram,
            "Time from a request's head to the end of its answer.",
        );
        for ((route, service), m) in &routes {
            let labels = [("route", route.as_str()), ("service", service.as_str())];
            t.histogram(
                "berth_ingress_request_duration_seconds",
                &labels,
                &m.latency,
            );
        }
    }
}

impl Exchange {
    /// Counts body bytes sent to the client.
    pub fn sent(&mut self, n: usize) {
        self.bytes += n as u64;
    }
}

impl RouteMetrics {
    fn new(route: &str, service: &str) -> RouteMetrics {
        RouteMetrics {
            route: route.to_string(),
            service: service.to_string(),
            common: Default::default(),
            other_codes: Mutex::default(),
            backend_errors: AtomicU64::new(0),
            latency: Histogram::new(LATENCY_BOUNDS),
        }
    }

    fn count(&self, code: u16) {
        match COMMON_CODES.iter().position(|c| *c == code) {
            Some(i) => {
                self.common[i].fetch_add(1, Ordering::Relaxed);
            }
            None => {
                *self
                    .other_codes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(code)
                    .or_default() += 1;
            }
        }
    }

    /// Each status code answered at least once, with its count.
    fn codes(&self) -> BTreeMap<u16, u64> {
        let mut all = self
            .other_codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (code, n) in COMMON_CODES.iter().zip(&self.common) {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                all.insert(*code, n);
            }
        }
        all
    }

    pub fn backend_error(&self) {
        self.backend_errors.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        self.metrics.count(self.status);
        self.metrics.latency.observe(took.as_secs_f64());
        if let Some((log, dropped)) = &self.log {
            let bytes = if self.bytes == 0 {
                "-".to_string()
            } else {
                self.bytes.to_string()
            };
            let line = format!(
                "{} - - [{}] \"{}\" {} {} \"{}\" \"{}\"\n",
                self.client,
                clf_time(self.when),
                quote(&self.request_line),
                self.status,
                bytes,
                quote(&self.referer),
                quote(&self.agent),
            );
            if log.try_send(line).is_err() {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A field inside the log's quotes, with `"` and `\` escaped as nginx does.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `02/Dec/2026:13:55:36 +0000`, the combined format's time, in UTC.
pub fn clf_time(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_written_as_the_combined_log_format_wants() {
        let at = |s: u64| clf_time(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "01/Jan/1970:00:00:00 +0000");
        // 2000-02-29 23:59:59, a leap day of a year divisible by 400.
        assert_eq!(at(951_868_799), "29/Feb/2000:23:59:59 +0000");
        assert_eq!(at(1_796_220_000), "02/Dec/2026:14:00:00 +0000");
        assert_eq!(quote("a\"b\\c\n"), "a\\\"b\\\\c\\x0A");
    }

    #[test]
    fn common_and_rare_status_codes_are_all_counted() {
        let m = RouteMetrics::new("a.test/", "a");
        for code in [200, 200, 503, 418, 200, 418, 599] {
            m.count(code);
        }
        let want: BTreeMap<u16, u64> = [(200, 3), (418, 2), (503, 1), (599, 1)].into();
        assert_eq!(m.codes(), want);
    }
}
