// Package console is callfleet's supervisor console: a live board of the
// Calls of a namespace, Campaign and Call pages, listen-in and the bot's
// assist feed, and interventions (pause, resume, hand off, hang up, set a
// disposition).
//
// The console keeps no users. A person signs in with a Kubernetes bearer
// token, which the console checks with a TokenReview; before every read it
// asks a SubjectAccessReview whether that user may do it, and every write is
// made with the user's own token, so the cluster's RBAC alone decides. The
// token is kept only in an encrypted, HttpOnly, SameSite=Strict cookie;
// writes also need a CSRF token bound to the session.
//
// Listening in goes from the browser straight to the stream gateway that
// holds the call, with a monitortoken the console signs for one user and one
// Call once the cluster has allowed that user "get" on calls/monitor.
//
// Pages are rendered on the server from html/template; a little JavaScript
// (assets/, embedded) keeps the board live over Server-Sent Events fed by one
// watch of the console's cache, and plays audio with WebAudio.
package console
