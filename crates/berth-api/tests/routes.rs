//! The router serves every route of the table, at its declared method: an
//! empty request reaches the route's extractors (which refuse it with 400
//! or 415), never axum's 404 or 405.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use berth_agent::{Agent, AgentOptions, Home, Timing};
use berth_api_types::{Method, ROUTES};
use std::time::Duration;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_the_table_is_mounted_at_its_method() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(AgentOptions {
        home: Home::new(dir.path()),
        nodename: "routes-test".into(),
        host_docker_socket: dir.path().join("no-docker.sock").display().to_string(),
        parallelism: 1,
        resync: Duration::from_secs(30),
        warn_ttl: Duration::from_secs(300),
        private_bridge_pool: Default::default(),
        timing: Timing::default(),
        watchdog: None,
    })
    .await
    .expect("agent");
    let router = berth_api::router(agent);
    for r in ROUTES {
        let method = match r.method {
            Method::Get => "GET",
            Method::Post => "POST",
        };
        let req = Request::builder()
            .method(method)
            .uri(r.path)
            .body(Body::empty())
            .expect("request");
        let code = router.clone().oneshot(req).await.expect("answer").status();
        assert!(
            code != StatusCode::NOT_FOUND && code != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {}: {code}",
            r.path
        );
        // The other method is not served.
        let other = if method == "GET" { "POST" } else { "GET" };
        let req = Request::builder()
            .method(other)
            .uri(r.path)
            .body(Body::empty())
            .expect("request");
        let code = router.clone().oneshot(req).await.expect("answer").status();
        assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED, "{other} {}", r.path);
    }
}
