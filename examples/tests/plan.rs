//! The library's plan agrees with what the lab's `--plan` run prints: the same T-SQL batches and
//! ARM requests, in the same order.

use std::io::Write;
use std::sync::{Arc, Mutex};

use milink_core::lifecycle::{InstanceOp, SourceOp};
use milink_core::plan::PlanStep;
use milink_core::sim::Lab;
use milink_examples::plan::{lab_plan, print, print_step};
use milink_examples::tailspin::{Options, run};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn lab_text(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.extend(["--journal-dir".into(), dir.path().display().to_string()]);
    let out = Capture::default();
    run(&Options::parse(&args).unwrap(), Box::new(out.clone()))
        .await
        .unwrap();
    String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
}

/// Certificates exchanged between the sides are the simulator's in the lab and placeholders in
/// the library's plan.
fn carries_a_runtime_certificate(step: &PlanStep) -> bool {
    matches!(
        step,
        PlanStep::Sql {
            op: SourceOp::ImportInstanceCertificate { .. },
            ..
        } | PlanStep::Arm {
            op: InstanceOp::PutServerTrustCertificate { .. },
            ..
        } | PlanStep::Redirect { .. }
    )
}

async fn agrees(args: &[&str], failback: bool, cutover: bool, steps: usize) {
    let spec = Lab::tailspin(1).unwrap().spec;
    let plan = lab_plan(&spec, failback, cutover).unwrap();
    assert_eq!(plan.len(), steps, "{}", print(&plan));
    let lab = lab_text(args).await;
    let mut from = 0;
    let mut compared = 0;
    for (stage, step) in plan.steps() {
        if carries_a_runtime_certificate(step) {
            continue;
        }
        let text = print_step(step, &plan.instance);
        // The lab prints each distinct operation once, at its first occurrence.
        if lab[..from].contains(&text) {
            continue;
        }
        match lab[from..].find(&text) {
            Some(at) => from += at + text.len(),
            None => panic!(
                "{:?}/{:?}: not in the lab's plan after byte {from}:\n{text}\n---\n{lab}",
                stage.operation, stage.phase
            ),
        }
        compared += 1;
    }
    assert!(compared >= steps / 2, "{compared} of {steps}");
}

#[tokio::test]
async fn the_library_plan_matches_the_lab_plan_of_a_cutover() {
    agrees(&["--plan", "--cutover"], false, true, 18).await;
}

#[tokio::test]
async fn the_library_plan_matches_the_lab_plan_of_a_failback() {
    agrees(&["--plan", "--failback"], true, false, 17).await;
}
