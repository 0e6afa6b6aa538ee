//! The events API: newest first, cursors, filters.

use serde_json::Value;

use crate::helpers::*;

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn pagination_newest_first_with_cursors() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    for i in 0..7 {
        c.create_customer(&format!("c{i}"), None, &format!("k{i}"))
            .await
            .unwrap();
    }
    let all: Vec<String> = sb.read(|s| s.events.iter().rev().map(|e| e.id.clone()).collect()).await;
    assert_eq!(all.len(), 7);

    // Through the client: pages of 3 with starting_after.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (page, more) = c.list_events(None, cursor.as_deref(), 3).await.unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|e| e.id.clone()));
        cursor = page.last().map(|e| e.id.clone());
        if !more {
            break;
        }
    }
    assert_eq!(seen, all, "pages cover every event once, newest first");
    let (page, _) = c.list_events(None, None, 1).await.unwrap();
    let ev = creditd_stripe::Event::parse(page[0].payload_json.as_bytes()).unwrap();
    assert_eq!(
        (ev.type_.as_str(), ev.id.as_str()),
        ("customer.created", all[0].as_str())
    );

    // ending_before returns the newer neighbours.
    let (_, list) = get_json(&sb, &format!("v1/events?ending_before={}&limit=2", all[4])).await;
    assert_eq!(ids(&list), all[2..4].to_vec());
    assert_eq!(list["has_more"], true);
    // created filters.
    let created = sb.read(|s| s.events[0].created).await;
    let (_, list) = get_json(&sb, &format!("v1/events?created[gte]={created}&limit=100")).await;
    assert_eq!(ids(&list).len(), 7);
    let (_, list) = get_json(&sb, &format!("v1/events?created[lt]={created}")).await;
    assert_eq!(ids(&list).len(), 0);
    let (events, more) = c.list_events(Some(created + 10), None, 10).await.unwrap();
    assert!(events.is_empty() && !more);
    // type filter, bad limit, unknown cursor.
    let (_, list) = get_json(&sb, "v1/events?type=customer.*&limit=100").await;
    assert_eq!(ids(&list).len(), 7);
    let (_, list) = get_json(&sb, "v1/events?type=charge.succeeded").await;
    assert_eq!(ids(&list).len(), 0);
    assert_eq!(get_json(&sb, "v1/events?limit=101").await.0, 400);
    assert_eq!(get_json(&sb, "v1/events?starting_after=evt_nope").await.0, 404);
    let (status, one) = get_json(&sb, &format!("v1/events/{}", all[3])).await;
    assert_eq!((status, one["id"].as_str().unwrap()), (200, all[3].as_str()));
    sb.shutdown().await;
}
