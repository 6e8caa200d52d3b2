//! `GET /` and its assets come from the binary, with a strict Content-Security-Policy.

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let app = common::spawn(None).await;
    let res = app.client.get(format!("{}/", app.address)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(html.contains("/assets/dashboard.js") && html.contains("/assets/uplot.min.js"));
    assert!(!html.contains("http://") && !html.contains("https://"), "no external resources");

    for (name, kind) in [("dashboard.js", "javascript"), ("uplot.min.js", "javascript"), ("dashboard.css", "css"), ("uplot.min.css", "css")]
    {
        let res = app.client.get(format!("{}/assets/{name}", app.address)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{name}");
        assert!(res.headers()["content-type"].to_str().unwrap().contains(kind), "{name}");
        assert!(!res.text().await.unwrap().is_empty());
    }
    let missing = app.client.get(format!("{}/assets/nope.js", app.address)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    app.stop().await;
}
