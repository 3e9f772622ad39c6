// Package gateway is callfleet's stream gateway: the WebSocket server Piopiy
// dials for a call's audio stream, run beside a bot in every StreamEndpoint
// pod.
//
// For each socket it verifies the signed token of the ws_url, opens the bot's
// localhost WebSocket, sends the bot a JSON start frame, and relays audio
// both ways (platform L16 → bot binary; bot binary → Piopiy streamAudio
// frames). Bot control frames become Piopiy frames or Call status writes.
//
// Control that exists only as frames on the live socket (pause, resume, stop,
// play, hangup, the handoff bridge) is driven from the Call object: the
// gateway watches the Calls of its namespace and the pod that holds a call's
// socket turns spec and status changes into frames, then reports what it did
// in status.stream with few JSON merge patches.
package gateway
