//! The sample messages in `examples/mq/` parse, and walked through a running capture
//! point in the order docs/mq.md uses, each gets the answer the docs promise.

mod common;

use common::{unique_config, Rig};
use std::path::PathBuf;
use worklane_capture_mq::codec::{Codec, Inbound, Outbound};

fn sample(name: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/mq");
    std::fs::read_to_string(dir.join(format!("{name}.xml"))).unwrap()
}

#[test]
fn there_is_one_parseable_sample_per_inbound_message() {
    let codec = Codec::utc();
    for name in Inbound::NAMES {
        let parsed = codec
            .parse_inbound(sample(name).as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.message_name(), name);
    }
}

#[tokio::test]
async fn the_walk_through_answers_as_documented() {
    let mut rig = Rig::start(unique_config("MQ1")).await;
    let steps = [
        ("Ping", "Pong"),
        ("CreateTask", "TaskCreated"),
        ("UpdateTask", "TaskUpdated"),
        ("GetTaskInfo", "TaskInfo"),
        ("HoldTask", "TaskHeld"),
        ("ResumeTask", "TaskResumed"),
        ("RestartTask", "TaskRestarted"),
        ("CompleteTask", "TaskCompleted"),
        ("CancelTask", "Error"),
    ];
    for (request, answer) in steps {
        let got = rig.client.ask(&sample(request)).await;
        assert_eq!(got.name(), answer, "{request}: {got:?}");
        if let Outbound::Error(e) = got {
            assert_eq!(e.code, "CANNOT_CANCEL_COMPLETED_TASK");
        }
    }
    rig.finish().await;
}
