//! SIGTERM under load: `coffee-rt up` finishes in-flight work, exits within 10 s, and every
//! order it acknowledged is kept.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use coffee_core::Version;
use futures::StreamExt;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_keeps_every_acknowledged_order() {
    let env = TestEnv::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let mut up = env.command(&["up"]);
    up.env("COFFEE_RT_LISTEN", &listen).stdout(Stdio::null());
    let mut child = up.spawn().unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://{listen}");
    assert!(
        wait_until(Duration::from_secs(30), || async {
            client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success())
        })
        .await
    );

    let pid = child.id().unwrap() as i32;
    let load = futures::stream::iter(0..3000)
        .map(|i| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let version = if i % 2 == 0 { "v1" } else { "v2" };
                let o = order(i);
                let res = client.post(format!("{base}/api/{version}/order")).json(&o).send().await;
                match res {
                    Ok(r) if r.status().is_success() => Some((version, o["order_id"].as_str().unwrap().to_owned())),
                    _ => None,
                }
            }
        })
        .buffer_unordered(32)
        .filter_map(|x| async move { x })
        .collect::<Vec<_>>();
    let killer = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        Instant::now()
    };
    let (acked, sent_at) = tokio::join!(load, killer);
    let status = tokio::time::timeout(Duration::from_secs(12), child.wait()).await.expect("exits").unwrap();
    assert!(sent_at.elapsed() < Duration::from_secs(11), "stopped within 10 s of SIGTERM");
    assert!(status.success(), "clean exit: {status:?}");
    assert!(acked.len() > 100, "load was running ({} acknowledged)", acked.len());

    // v2 orders acknowledged but not yet processed are still in the stream: a restarted
    // worker finishes them.
    let mut worker =
        env.spawn(&["worker", "--consumer", &format!("up-{}", std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim())], &[]);
    let v2_acked = acked.iter().filter(|(v, _)| *v == "v2").count() as i64;
    assert!(wait_until(Duration::from_secs(30), || async { env.rows(Version::V2).await >= v2_acked }).await);
    worker.start_kill().unwrap();
    let ids: Vec<String> = acked.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(stored(&env, &ids).await, ids.len() as i64, "every acknowledged order is stored");
}
