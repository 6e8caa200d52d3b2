//! `coffee-lab bench repair`, small: 200 orders/s over v1, v2 and v3 against the real
//! `coffee-rt up` on a private Redis, once SIGKILLed and restarted empty, once FLUSHALLed.
//! Every path must count everything committed before Redis returned within 10 s, end with no
//! drift, and lose no acknowledged order beyond v2's stream; the v2 and v3 rebuild counters
//! prove that the loss happened and was repaired (a loss that did nothing would "recover"
//! at once). The results file has its shape, and the bench leaves no database behind.

use std::process::Stdio;

use crate::common::{self, PG};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_recovers_within_ten_seconds_of_redis_losing_everything_with_no_drift() {
    let _shared = common::EXCLUSIVE.read().await;
    let coffee_rt = common::coffee_rt();
    let dir = std::env::temp_dir().join(format!("coffee-lab-repair-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("repair-results.json");

    let child = tokio::process::Command::new(common::coffee_lab())
        .args(["bench", "repair", "--rates", "200", "--fault", "kill,flushall", "--warmup", "3s", "--after", "5s"])
        .args(["--recovery-cap", "20s", "--database-url", PG, "--brokers", &common::brokers()])
        .arg("--coffee-rt")
        .arg(&coffee_rt)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("coffee-lab runs");
    let pid = child.id().unwrap();
    let run = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "bench repair failed ({}):\n{stdout}", run.status);

    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let trials = r["trials"].as_array().unwrap();
    let faults: Vec<&str> = trials.iter().map(|t| t["fault"].as_str().unwrap()).collect();
    assert_eq!(faults, ["kill", "flushall"], "{r:#}");
    for t in trials {
        for v in ["v1", "v2", "v3"] {
            assert!(t["counts_at_t0"][v].as_i64().unwrap() > 0, "{v} had orders when Redis lost them: {t:#}");
            let s = t["recovery_s"][v].as_f64().unwrap_or_else(|| panic!("{v} recovered: {t:#}"));
            assert!(s > 0.0 && s <= 10.0, "{v} recovered within 10 s of Redis returning ({s} s): {t:#}");
            let p = &t["paths"][v];
            assert!(p["losses"]["acked"].as_u64().unwrap() > 500, "{v} was loaded: {p:#}");
            assert_eq!(p["losses"]["lost"], 0, "{v} lost acknowledged orders: {p:#}");
            assert_eq!(
                p["losses"]["acked"].as_u64().unwrap() + p["losses"]["unacked_stored"].as_u64().unwrap(),
                p["postgres_rows"].as_u64().unwrap() + p["losses"]["lost_with_stream"].as_u64().unwrap(),
                "{v}: PostgreSQL holds every acknowledged order but those lost with the stream, and no other: {p:#}"
            );
        }
        for v in ["v2", "v3"] {
            assert!(t["rebuilds"][v]["count"].as_f64().unwrap() >= 1.0, "{v}'s projection was rebuilt: {t:#}");
        }
        assert_eq!(t["drift"], 0, "Redis equals the recomputation from PostgreSQL: {t:#}");
        assert_eq!(t["drain"]["outcome"], "complete", "{t:#}");
        assert!(t["latency_ms"]["p99"].as_f64().unwrap() > 0.0, "{t:#}");
    }
    assert!(trials[0]["redis_down_ms"].as_f64().unwrap() >= 1000.0, "the killed Redis was down its second: {:#}", trials[0]);
    assert!(stdout.contains("| 200 |") && stdout.contains("| kill |") && stdout.contains("| flushall |"), "the table: {stdout}");

    let (client, conn) = tokio_postgres::connect(PG, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let prefix = format!("coffee_lab_repair_{pid}_");
    let left: i64 = client.query_one("SELECT count(*) FROM pg_database WHERE starts_with(datname, $1)", &[&prefix]).await.unwrap().get(0);
    assert_eq!(left, 0, "a repair database was left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}
