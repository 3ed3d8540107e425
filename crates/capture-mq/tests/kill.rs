//! Nothing lost: a stream of 1,000 CreateTasks while the capture point is killed with
//! SIGKILL mid-stream and started again, over both transports.

mod common;

use common::{unique_config_on, wait_until, Client, Proto, Received};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command};
use std::time::Duration;
use worklane_capture_mq::codec::{NoticeKind, Outbound};
use worklane_capture_mq::MqConfig;
use worklane_store::{PageAfter, TaskQuery};

const MESSAGES: usize = 1000;

fn spawn(cfg: &MqConfig, store: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_worklane-mq-harness"))
        .args(["--store", store, "--url", &cfg.url, "--id", &cfg.id])
        .args([
            "--input-queue",
            &cfg.input_queue,
            "--output-queue",
            &cfg.output_queue,
        ])
        .args(["--error-queue", &cfg.error_queue, "--check-if-captured"])
        .args([
            "--transport",
            cfg.transport.as_deref().unwrap_or("amqp-0-9-1"),
        ])
        .spawn()
        .expect("harness starts")
}

fn create(i: usize) -> String {
    format!("<GTLMessages><CreateTask><CaptureId>cap-{i}</CaptureId><priority>{}</priority></CreateTask></GTLMessages>", i % 7)
}

async fn read_until(
    client: &mut Client,
    answers: &mut BTreeMap<String, Vec<Received>>,
    distinct: usize,
) {
    while answers.len() < distinct {
        let r = client.recv().await;
        let key = r
            .correlation_id
            .clone()
            .expect("every answer is correlated");
        answers.entry(key).or_default().push(r);
    }
}

async fn kill_9_mid_stream_loses_nothing_and_doubles_nothing(p: Proto) {
    let mut cfg = unique_config_on("KILL", p);
    cfg.check_if_captured = true;
    let store_url = worklane_store::testing::fresh_sqlite_url();
    let mut client = Client::connect(&cfg, &cfg.output_queue).await;
    let mut child = spawn(&cfg, &store_url);

    let publisher = Client::connect(&cfg, &cfg.error_queue).await;
    let sending = tokio::spawn(async move {
        for i in 0..MESSAGES {
            publisher
                .send(&create(i), Some(&format!("k-{i}")), None)
                .await;
        }
        publisher
    });

    let mut answers: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    read_until(&mut client, &mut answers, MESSAGES / 4).await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let killed_at = answers.len();
    // Mid-stream: requests are left for the restarted capture point (still being sent, or
    // taken but unacknowledged by the killed one and handed back by the broker).
    wait_until(10, "requests left after the kill", || async {
        client.count(&cfg.input_queue).await > 0
    })
    .await;
    let mut child = spawn(&cfg, &store_url);
    let publisher = sending.await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(120),
        read_until(&mut client, &mut answers, MESSAGES),
    )
    .await
    .expect("every message answered");
    assert!(killed_at < MESSAGES, "the kill happened mid-stream");

    // A redelivery of an applied message gets the same answer, not a second task.
    for i in [0, 1, killed_at - 1, killed_at, MESSAGES - 1] {
        publisher
            .send(&create(i), Some(&format!("k-{i}")), None)
            .await;
    }
    let mut repeats = 0;
    while repeats < 5 {
        let r = client.recv().await;
        answers
            .entry(r.correlation_id.clone().unwrap())
            .or_default()
            .push(r);
        repeats += 1;
    }

    // Graceful stop: whatever is still unacknowledged would show up as ready again.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    wait_until(10, "the input queue to be empty", || async {
        publisher.count(&cfg.input_queue).await == 0
    })
    .await;

    let mut duplicates = 0;
    for (key, got) in &answers {
        let first = &got[0];
        for again in &got[1..] {
            duplicates += 1;
            assert_eq!(again, first, "a repeated answer to {key} differs");
        }
        match first.parse() {
            Outbound::Notice(n) => assert_eq!(n.kind, NoticeKind::TaskCreated, "{key}"),
            other => panic!("{key} answered with {other:?}"),
        }
    }
    assert!(duplicates >= 5);
    let expected: BTreeSet<String> = (0..MESSAGES).map(|i| format!("k-{i}")).collect();
    assert_eq!(answers.keys().cloned().collect::<BTreeSet<_>>(), expected);

    let store = worklane_store::connect(&store_url).await.unwrap();
    let mut capture_ids = Vec::new();
    let mut q = TaskQuery {
        limit: 1000,
        ..Default::default()
    };
    loop {
        let page = store.list_tasks(&q).await.unwrap();
        let Some(last) = page.last() else { break };
        q.after = Some(PageAfter {
            broker_id: last.broker_id,
            priority: last.priority,
        });
        capture_ids.extend(page.into_iter().map(|t| t.capture_id));
    }
    assert_eq!(
        capture_ids.len(),
        MESSAGES,
        "every task exists exactly once"
    );
    let unique: BTreeSet<_> = capture_ids.iter().collect();
    assert_eq!(unique.len(), MESSAGES);
    println!("killed after {killed_at} answers; {duplicates} repeated answers, all identical");
    client.delete_queues(&cfg).await;
}

mod kill_9_mid_stream_loses_nothing_and_doubles_nothing {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn amqp_0_9_1() {
        super::kill_9_mid_stream_loses_nothing_and_doubles_nothing(super::Proto::Amqp091).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn amqp_1_0() {
        super::kill_9_mid_stream_loses_nothing_and_doubles_nothing(super::Proto::Amqp10).await
    }
}
