//! The ARM adapter's read budget against the server's read bucket: the server says how many
//! reads are left (`x-ms-ratelimit-remaining-subscription-reads`), and a client holding a
//! budget waits once that falls to its reserve instead of spending the subscription's last
//! reads.

use std::sync::Arc;
use std::time::Duration;

use super::tests::{TOKEN, client_trusting, read};
use super::{ArmHttpsServer, ArmServerConfig};
use crate::arm::client::{ArmManagedInstance, ArmOptions, ArmReadBudget, StaticToken};
use crate::sim::Lab;
use crate::time::Clock;

async fn reads(budget: Option<Arc<ArmReadBudget>>) -> (Duration, u32) {
    let lab = Lab::tailspin(5).unwrap();
    let server = ArmHttpsServer::start(
        ArmServerConfig {
            // Other clients of the subscription have spent most of its bucket.
            reads_at_start: 40,
            ..ArmServerConfig::with_token(TOKEN)
        },
        lab.sim.clone(),
    )
    .await
    .unwrap();
    let clock = Arc::new(lab.sim.clock());
    let mi = ArmManagedInstance::with_timer(
        lab.spec.target.instance.clone(),
        Arc::new(StaticToken::new(TOKEN.into())),
        ArmOptions::builder()
            .endpoint(server.base_url())
            .trust_root_der(server.certificate_der().to_vec())
            .build(),
        clock.clone(),
    )
    .unwrap()
    .with_read_budget(budget);
    let started = clock.now();
    for _ in 0..60 {
        mi.managed_instance().await.unwrap();
    }
    let took = clock.now().since(started);
    // What the server says is left now (this read is one more).
    let url = format!(
        "{}{}?api-version={}",
        server.base_url(),
        lab.spec.target.instance,
        crate::arm::API_VERSION
    );
    let answer = read(
        client_trusting(server.certificate_der())
            .get(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let left = answer
        .header("x-ms-ratelimit-remaining-subscription-reads")
        .unwrap()
        .parse()
        .unwrap();
    (took, left)
}

#[tokio::test]
async fn a_client_with_a_budget_waits_when_arm_says_the_reads_run_low() {
    // Without a budget the 60 reads go at once and empty the subscription's bucket.
    let (took, left) = reads(None).await;
    assert_eq!(left, 0, "took {took:?}");
    // With one, the first answer (39 left) caps it at 14 reads before the reserve of 25; the
    // other 46 wait for the refill, 25 a second.
    let (took, left) = reads(Some(ArmReadBudget::arm())).await;
    assert!(left >= 20, "{left} left");
    assert!(took >= Duration::from_millis(1800), "took {took:?}");
}
