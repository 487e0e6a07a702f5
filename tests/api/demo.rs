//! The demo's walkthrough succeeds against a fresh emulator and leaves Contoso consented.

use crate::helpers::spawn_emulator;

#[tokio::test]
async fn demo_walkthrough_consents_contoso_and_reads_it_from_graph() {
    let emulator = spawn_emulator().await;

    consentry::demo::walkthrough(
        &emulator.base,
        &emulator.client_id,
        crate::helpers::REDIRECT_URI,
    )
    .await
    .expect("the walkthrough succeeds");

    let (status, tenant) = emulator
        .control(
            reqwest::Method::GET,
            &format!("/tenants/{}", emulator.contoso()),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(tenant["consented"], true);
    let requests = emulator.requests().await;
    assert_eq!(
        requests["endpoints"]["admin_consent_decision"], 1,
        "{requests}"
    );
    assert_eq!(requests["endpoints"]["graph_organization"], 1, "{requests}");
}
