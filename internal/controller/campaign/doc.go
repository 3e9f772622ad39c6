// Package campaign reconciles Campaigns: many Calls from a contact list,
// started as slots free, paced, inside calling windows, resumable after a
// restart, with their outcomes counted exactly once. docs/campaign.md is the
// user's guide; this is the shape of the code.
//
// The contact list is the inline contacts, then the data rows of each
// contactsFrom CSV in order; contact i is the i-th entry of that
// concatenation, invalid rows included, so indexes stay put when a bad row is
// reported. status.cursor is the next index to start. Per reconcile:
//
//  1. list the Campaign's Calls (cache, by controller index) and check the
//     expectations: no new Call until the cache shows the ones this process
//     created (campaign_calls.go, expectations.go);
//  2. count finished Calls into status (campaign_count.go explains why each
//     counts exactly once) and delete expired ones (ttlSecondsAfterFinished);
//  3. load the contact list (parsed once per ConfigMap resourceVersion), the
//     do-not-call list, the schedule and the StreamEndpoint (contacts.go,
//     schedule.go);
//  4. walk the cursor: skip invalid and do-not-call contacts, adopt Calls
//     made before a crash, and create Calls named CallName(campaign, i) while
//     the head contact's window is open, fewer than min(concurrency, the
//     endpoint's free slots) are in flight and the GCRA pacer allows
//     (pacing.go);
//  5. compute conditions and write status once, with the resourceVersion
//     read (campaign_status.go); then release the counted Calls.
//
// The cursor moves past a contact only once its Call exists (or it is
// skipped), and the status write carries cursor and pacing clock together.
// A crash between a create and that write leaves a Call the next reconcile
// finds by its deterministic name and adopts, so nobody is rung twice.
package campaign
