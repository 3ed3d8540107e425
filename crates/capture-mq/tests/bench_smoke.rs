//! The benchmark runs end to end on a small load (its figures are not judged here).

mod common;

use worklane_capture_mq::bench::{run, BenchArgs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_runs_both_measurements_end_to_end() {
    run(BenchArgs {
        url: common::amqp_url(),
        messages: 300,
        in_flight: 64,
        prefetch: 32,
        rounds: 1,
        transport: "amqp-0-9-1".into(),
        transform: false,
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_runs_over_amqp_1_0_with_transformations() {
    run(BenchArgs {
        url: common::amqp_url(),
        messages: 200,
        in_flight: 64,
        prefetch: 32,
        rounds: 1,
        transport: "amqp-1.0".into(),
        transform: true,
    })
    .await
    .unwrap();
}
