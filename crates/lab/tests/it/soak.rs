//! `coffee-lab soak`, small, through the binary: about a minute of load on all three paths with
//! a fault every 6–9 s on private servers (the shared services are never touched), then the
//! audit. The run must pass the audit (exit 0), and its results must show faults of several
//! kinds, orders acknowledged on every path, an audit with nothing lost, extra or drifted, and
//! RSS samples of every process; the plot must be written.

use serde_json::Value;

use crate::common;

#[tokio::test(flavor = "multi_thread")]
async fn a_minute_of_faults_loses_nothing_and_redis_equals_postgres() {
    let _shared = common::EXCLUSIVE.read().await;
    let coffee_rt = common::coffee_rt();
    let dir = std::env::temp_dir().join(format!("coffee-lab-soak-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (out, plot) = (dir.join("soak.json"), dir.join("soak.svg"));
    let run = {
        let (out, plot) = (out.clone(), plot.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(common::coffee_lab())
                .arg("soak")
                .args(["--duration", "60s", "--rate", "150", "--seed", "42"])
                .args(["--fault-min-gap", "6s", "--fault-max-gap", "9s", "--drain-timeout", "120s"])
                .arg("--coffee-rt")
                .arg(&coffee_rt)
                .arg("--out")
                .arg(&out)
                .arg("--plot")
                .arg(&plot)
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("coffee-lab runs")
        })
        .await
        .unwrap()
    };
    let stdout = String::from_utf8_lossy(&run.stdout);
    eprintln!("{stdout}");
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("the results at {} ({e}); stdout: {stdout}", out.display()));
    let r: Value = serde_json::from_str(&text).unwrap();
    assert!(run.status.success(), "the soak passes its audit: {}\nproblems: {}", run.status, r["problems"]);
    assert_eq!(r["passed"], true);
    assert_eq!(r["problems"].as_array().unwrap().len(), 0, "{}", r["problems"]);
    assert!(stdout.contains("soak PASSED"), "{stdout}");

    // 60 s less the quiet end, 6–9 s apart: 5 to 8 faults, from a bag of all five kinds.
    let faults = r["faults"].as_array().unwrap();
    assert!((5..=8).contains(&faults.len()), "{} faults: {faults:?}", faults.len());
    let kinds: std::collections::BTreeSet<&str> = faults.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 5, "the first five faults are one of each kind: {kinds:?}");
    for f in faults {
        assert!(f["pid"].as_u64().is_some_and(|p| p > 0), "the process hit was running: {f}");
        assert!(f["down_s"].as_f64().unwrap() > 0.0, "{f}");
    }
    let by_kind: u64 = r["faults_by_kind"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(by_kind as usize, faults.len());

    for v in ["v1", "v2", "v3"] {
        let o = &r["audit"]["orders"][v];
        let acknowledged = o["acknowledged"].as_u64().unwrap();
        // 150/s over three paths for 60 s: about 3,000 each, less what outages held back.
        assert!(acknowledged > 1000, "{v}: {o}");
        assert_eq!(o["missing"], 0, "{v}: {o}");
        assert_eq!(o["extra"], 0, "{v}: {o}");
        assert_eq!(o["mismatched"], 0, "{v}: {o}");
        let rows = o["postgres_rows"].as_u64().unwrap();
        assert_eq!(rows, acknowledged + o["unresolved_stored"].as_u64().unwrap(), "{v}: {o}");
        assert_eq!(r["load"]["paths"][v]["acknowledged"], acknowledged, "{v}");
    }
    assert_eq!(r["audit"]["duplicated"], 0);
    assert_eq!(r["audit"]["drift"].as_array().unwrap().len(), 0, "{}", r["audit"]["drift"]);
    assert_eq!(r["drain"]["outcome"], "complete", "{}", r["drain"]);

    let summary = r["rss"]["summary"].as_object().unwrap();
    for name in [
        "postgres",
        "redis",
        "kafka",
        "serve-0",
        "serve-1",
        "worker-0",
        "worker-1",
        "processor-0",
        "processor-1",
        "aggregate",
        "coffee-lab",
    ] {
        let s = summary.get(name).unwrap_or_else(|| panic!("{name} sampled: {summary:?}"));
        assert!(s["samples"].as_u64().unwrap() >= 30, "{name}: {s}");
        assert!(s["max_mib"].as_f64().unwrap() >= s["start_mib"].as_f64().unwrap() && s["max_mib"].as_f64().unwrap() > 1.0, "{name}: {s}");
        let series = &r["rss"]["series"][name];
        assert_eq!(series["t_s"].as_array().unwrap().len(), series["rss_mib"].as_array().unwrap().len(), "{name}");
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("restart-postgres") && svg.contains("worker-0"),
        "the plot names the faults and processes"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
