//! `mq send` puts files on the input queue; `mq listen` reads a queue to the end.

mod common;

use common::{unique_config, wait_until, Client};
use worklane_capture_mq::cli::{listen, send, ListenArgs, QueueArgs, SendArgs};

#[tokio::test]
async fn send_puts_each_file_on_the_input_queue_and_listen_reads_them() {
    let cfg = unique_config("CLI1");
    let client = Client::connect(&cfg, &cfg.error_queue).await;
    let queues = QueueArgs {
        url: cfg.url.clone(),
        input_queue: cfg.input_queue.clone(),
        output_queue: cfg.output_queue.clone(),
    };
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/mq");
    let files = vec![dir.join("Ping.xml"), dir.join("CreateTask.xml")];
    send(SendArgs {
        capture_point: "CLI1".into(),
        queues: queues.clone(),
        files,
    })
    .await
    .unwrap();
    wait_until(10, "both files on the input queue", || async {
        client.count(&cfg.input_queue).await == 2
    })
    .await;
    listen(ListenArgs {
        queues,
        queue: Some(cfg.input_queue.clone()),
        count: Some(2),
        idle_timeout: Some(10),
    })
    .await
    .unwrap();
    assert_eq!(
        client.count(&cfg.input_queue).await,
        0,
        "listen acknowledged what it printed"
    );
    let missing = SendArgs {
        capture_point: "CLI1".into(),
        queues: QueueArgs {
            url: cfg.url.clone(),
            input_queue: cfg.input_queue.clone(),
            output_queue: cfg.output_queue.clone(),
        },
        files: vec!["/nonexistent/x.xml".into()],
    };
    let err = send(missing).await.unwrap_err();
    assert!(format!("{err:#}").contains("/nonexistent/x.xml"));
    client.delete_queues(&cfg).await;
}

#[test]
fn arguments_do_not_show_the_broker_password() {
    let queues = QueueArgs {
        url: "amqp://user:hunter2@broker:5672/%2f".into(),
        input_queue: "GTLIn".into(),
        output_queue: "GTLOut".into(),
    };
    let bench = worklane_capture_mq::bench::BenchArgs {
        url: queues.url.clone(),
        messages: 1,
        in_flight: 1,
        prefetch: 1,
        rounds: 1,
        transport: "amqp-0-9-1".into(),
        transform: false,
    };
    for shown in [format!("{queues:?}"), format!("{bench:?}")] {
        assert!(
            !shown.contains("hunter2") && shown.contains("***"),
            "{shown}"
        );
    }
}
