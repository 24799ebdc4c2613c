//! Registration bodies, read as Consul reads them (field names matched
//! case-insensitively): services and checks of `/v1/agent/*/register`
//! and `/v1/catalog/register`.

use crate::duration;
use crate::reply::ApiError;
use crate::txn::field;
use berth_kv::catalog::{Check, CheckDef, Health, Service, Source};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

pub type Obj = Map<String, Value>;

/// The shortest `DeregisterCriticalServiceAfter` Consul honours.
const MIN_DEREGISTER: Duration = Duration::from_secs(60);

pub fn object(body: &[u8]) -> Result<Obj, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("Request decode failed: {e}")))
}

pub fn text(o: &Obj, name: &str) -> Result<String, ApiError> {
    match field(o, name) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(ApiError::bad(format!(
            "Request decode failed: {name}: expected a string, not {v}"
        ))),
    }
}

fn strings(o: &Obj, name: &str) -> Result<Vec<String>, ApiError> {
    match field(o, name) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::bad(format!("Request decode failed: {name}: expected strings"))
                })
            })
            .collect(),
        Some(_) => Err(ApiError::bad(format!(
            "Request decode failed: {name}: expected a list"
        ))),
    }
}

pub fn meta(o: &Obj, name: &str) -> Result<BTreeMap<String, String>, ApiError> {
    match field(o, name) {
        None => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ApiError::bad(format!(
                    "Request decode failed: {name}.{k}: expected a string"
                ))),
            })
            .collect(),
        Some(_) => Err(ApiError::bad(format!(
            "Request decode failed: {name}: expected an object"
        ))),
    }
}

fn port(o: &Obj) -> Result<u16, ApiError> {
    match field(o, "Port") {
        None => Ok(0),
        Some(v) => v
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| ApiError::bad(format!("Request decode failed: Port: {v}"))),
    }
}

fn dur(o: &Obj, name: &str) -> Result<Duration, ApiError> {
    match field(o, name) {
        None => Ok(Duration::ZERO),
        Some(Value::String(s)) if s.is_empty() => Ok(Duration::ZERO),
        Some(Value::String(s)) => duration::parse(s).ok_or_else(|| {
            ApiError::bad(format!(
                "Request decode failed: {name}: {s:?} is not a duration"
            ))
        }),
        // Go's encoding of a time.Duration: nanoseconds.
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Duration::from_nanos)
            .ok_or_else(|| ApiError::bad(format!("Request decode failed: {name}"))),
        Some(v) => Err(ApiError::bad(format!("Request decode failed: {name}: {v}"))),
    }
}

pub fn health(s: &str) -> Result<Health, ApiError> {
    match s {
        "passing" => Ok(Health::Passing),
        "warning" => Ok(Health::Warning),
        "critical" => Ok(Health::Critical),
        other => Err(ApiError::bad(format!("Invalid check status: {other:?}"))),
    }
}

/// A check definition; `default_id` when it names none.
pub fn check(o: &Obj, node: &str, default_id: &str, default_name: &str) -> Result<Check, ApiError> {
    let mut id = text(o, "CheckID")?;
    if id.is_empty() {
        id = text(o, "ID")?;
    }
    if id.is_empty() {
        id = default_id.to_string();
    }
    if id.is_empty() {
        return Err(ApiError::bad("Missing check ID"));
    }
    let def = CheckDef {
        http: text(o, "HTTP")?,
        tcp: text(o, "TCP")?,
        ttl_ms: dur(o, "TTL")?.as_millis() as u64,
        interval_ms: dur(o, "Interval")?.as_millis() as u64,
        timeout_ms: dur(o, "Timeout")?.as_millis() as u64,
        deregister_critical_after_ms: match dur(o, "DeregisterCriticalServiceAfter")? {
            // Consul's documented minimum.
            d if !d.is_zero() => d.max(MIN_DEREGISTER).as_millis() as u64,
            _ => 0,
        },
    };
    if (!def.http.is_empty() || !def.tcp.is_empty()) && def.interval_ms == 0 {
        return Err(ApiError::bad(
            "Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks",
        ));
    }
    let status = match text(o, "Status")?.as_str() {
        "" => Health::Critical,
        s => health(s)?,
    };
    let mut name = text(o, "Name")?;
    if name.is_empty() {
        name = default_name.to_string();
    }
    Ok(Check {
        node: node.to_string(),
        id,
        name,
        status,
        output: String::new(),
        notes: text(o, "Notes")?,
        service_id: text(o, "ServiceID")?,
        service_name: String::new(),
        def,
        // A check that starts critical has been so since now: the clock
        // of DeregisterCriticalServiceAfter starts here.
        critical_since_ms: (status == Health::Critical).then(crate::now_ms),
        create_index: 0,
        modify_index: 0,
    })
}

/// A service of `/v1/agent/service/register` (`name_field` "Name") or of
/// `/v1/catalog/register` ("Service"), with its checks.
pub fn service(o: &Obj, node: &str, name_field: &str) -> Result<(Service, Vec<Check>), ApiError> {
    let name = text(o, name_field)?;
    if name.is_empty() {
        return Err(ApiError::bad("Missing service name"));
    }
    let mut id = text(o, "ID")?;
    if id.is_empty() {
        id = name.clone();
    }
    let svc = Service {
        node: node.to_string(),
        id: id.clone(),
        name: name.clone(),
        tags: strings(o, "Tags")?,
        address: text(o, "Address")?,
        port: port(o)?,
        meta: meta(o, "Meta")?,
        source: Source::Api,
        create_index: 0,
        modify_index: 0,
    };
    let mut defs: Vec<&Obj> = Vec::new();
    if let Some(Value::Object(c)) = field(o, "Check") {
        defs.push(c);
    }
    if let Some(Value::Array(list)) = field(o, "Checks") {
        for c in list {
            match c {
                Value::Object(c) => defs.push(c),
                _ => return Err(ApiError::bad("Request decode failed: Checks")),
            }
        }
    }
    let many = defs.len() > 1;
    let checks = defs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let default_id = if many {
                format!("service:{id}:{}", i + 1)
            } else {
                format!("service:{id}")
            };
            check(c, node, &default_id, &format!("Service '{name}' check"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((svc, checks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_body_is_read_as_consul_reads_it() {
        let o = object(
            br#"{"name":"web","port":8080,"tags":["a"],"check":{"http":"http://127.0.0.1:1/","interval":"1s","deregistercriticalserviceafter":"1m"}}"#,
        )
        .unwrap();
        let (s, checks) = service(&o, "n1", "Name").unwrap();
        assert_eq!(
            (s.id.as_str(), s.port, s.tags.clone()),
            ("web", 8080, vec!["a".to_string()])
        );
        assert_eq!(checks[0].id, "service:web");
        assert_eq!(checks[0].status, Health::Critical);
        assert_eq!(checks[0].def.deregister_critical_after_ms, 60_000);
        let o =
            object(br#"{"Name":"x","Check":{"TTL":"10s","DeregisterCriticalServiceAfter":"5s"}}"#)
                .unwrap();
        let (_, checks) = service(&o, "n1", "Name").unwrap();
        assert_eq!(
            checks[0].def.deregister_critical_after_ms, 60_000,
            "Consul's minimum"
        );
    }

    #[test]
    fn bad_bodies_are_400s() {
        for bad in [
            r#"{"Port":80}"#,
            r#"{"Name":"x","Port":70000}"#,
            r#"{"Name":"x","Check":{"HTTP":"http://x/"}}"#,
            r#"{"Name":"x","Check":{"TTL":"abc"}}"#,
            r#"{"Name":"x","Check":{"TTL":"10s","Status":"sad"}}"#,
        ] {
            let o = object(bad.as_bytes()).unwrap();
            assert_eq!(service(&o, "n", "Name").unwrap_err().status, 400, "{bad}");
        }
    }
}
