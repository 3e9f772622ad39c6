package gateway

// Bounds on what the bot and the platform can make a stream hold. Each is a
// worst case per stream, whatever the peer sends or fails to read.
const (
	// maxPlatformFrame bounds one message from Piopiy. Its media frames are
	// a few KiB of base64 audio; 64 KiB leaves room for any documented
	// message and caps the audio ring at MaxBufferedFrames × 64 KiB.
	maxPlatformFrame = 64 << 10
	// maxPendingEvents bounds the events queued for a bot that does not
	// read. Only echoed marks are refused past it (they are the bot's own
	// frames coming back); the gateway's own events (start, paused, stop)
	// are few per call and always queued.
	maxPendingEvents = 256
	// maxRetainedFrame is the largest frame buffer kept for reuse; a larger
	// one (a burst of big frames) goes to the garbage collector.
	maxRetainedFrame = 16 << 10
)
