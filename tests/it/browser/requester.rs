//! The requester's journeys in the portal: filing a request and following it.

use super::journey;

#[tokio::test]
async fn a_requester_files_a_question_and_finds_it_in_my_requests() {
    journey(|_site, b| async move {
        b.sign_in("requester@example.com").await;

        b.click_text("New request").await;
        assert_eq!(b.path().await, "/tickets/new");
        b.assert_text("h1", "New request").await;
        b.assert_text("nav[aria-label='Kinds of request']", "Question / incident")
            .await;
        b.assert_accessible("choice of request kinds", &[]).await;
        b.assert_no_horizontal_scroll_at_390().await;

        b.click("a[href^='/tickets/new?process=question']").await;
        b.assert_text("h2", "Question / incident").await;
        b.assert_above_fold("#title").await;
        b.assert_accessible("question form", &[]).await;
        b.fill("#title", "The printer on floor 2 prints blank pages")
            .await;
        b.fill(
            "#description",
            "Since this morning, every page comes out **empty**.",
        )
        .await;
        b.click_text("File request").await;

        // The confirmation, on the new ticket's own page.
        let flash = b.text(".flash").await;
        assert!(
            flash.starts_with("Your request HD-") && flash.ends_with(" was filed."),
            "confirmation: {flash:?}"
        );
        let key = flash
            .trim_start_matches("Your request ")
            .trim_end_matches(" was filed.")
            .to_owned();
        assert_eq!(b.path().await, format!("/tickets/{key}"));
        b.assert_text("h1", "The printer on floor 2 prints blank pages")
            .await;
        b.assert_text(".pagehead .badge", "New").await;
        b.assert_text(
            "section[aria-label='Description']",
            "every page comes out empty",
        )
        .await;
        b.assert_text(".timeline", "filed this Question / incident")
            .await;
        b.assert_accessible("ticket page (requester)", &[]).await;
        b.assert_no_horizontal_scroll_at_390().await;

        b.click_text("My requests").await;
        b.assert_text("h1", "My requests").await;
        let row = b.text("table.list tbody tr").await;
        assert!(
            row.contains(&key) && row.contains("The printer on floor 2 prints blank pages"),
            "my requests' first row: {row:?}"
        );
        b.assert_above_fold("table.list tbody tr").await;
        b.assert_accessible("my requests", &[]).await;
        b.assert_no_horizontal_scroll_at_390().await;

        b.click(&format!("table.list a[href='/tickets/{key}']"))
            .await;
        assert_eq!(b.path().await, format!("/tickets/{key}"));
        b.assert_text("h1", "The printer on floor 2 prints blank pages")
            .await;
    })
    .await;
}
