// Package campaign reconciles Campaigns: a Call per attempt at each contact
// of a list, granted by the Campaign under its rules, with every contact's
// result kept in a sharded results record. docs/campaign.md is the user's
// guide; this is the shape of the code.
//
// Contacts are identified by key (their id, else their number; contacts.go
// reduces the list to one entry per person), never by position. The Call of
// attempt n of a contact is CallName(campaign, key, n) (identity.go), a
// single attempt: retries are the Campaign's, not the Call controller's.
// Progress is the results record (results.go): Campaign-owned ConfigMaps
// holding one CSV line per done contact, append-only, written in batches.
// Per reconcile (campaign_controller.go):
//
//  1. list the Campaign's Calls (cache, by controller index), group them by
//     key and check the expectations: no new Call until the cache shows the
//     ones this process created (expectations.go);
//  2. load the results record, contact list, do-not-call list, schedule
//     and retry policies (retry.go, schedule.go);
//  3. classify each contact (plan.go): recorded, in flight, final, waiting
//     for a retry, pending;
//  4. write the final ones to the record when a batch is due;
//  5. grant attempts: due retries, then pending contacts, passing over
//     closed windows, within concurrency, the endpoint's slots and the GCRA
//     pacer (pacing.go);
//  6. compute conditions and write status once (campaign_status.go); then
//     release the Calls accounted for and delete expired ones (calls.go).
//
// A Call keeps the count finalizer until its contact is recorded or a
// later attempt exists, so no result is lost to a TTL; the counts are
// computed from the record, so each contact counts once.
package campaign
