// Package piopiy is a typed Go client for the v2 ("PCMO") API of Piopiy, the
// TeleCMI voice platform: placing calls that stream their audio to a
// WebSocket, acting on live calls, looking up call detail records, building
// the frames a stream socket sends back, and parsing the webhooks Piopiy
// posts. It depends on the standard library only and can be used without
// the rest of callfleet.
//
// Placing a call:
//
//	c, err := piopiy.NewClient(piopiy.Credentials{AppID: 1234567, Secret: secret})
//	if err != nil { ... }
//	resp, err := c.MakeCall(ctx, piopiy.MakeCallRequest{
//		From: "918071387000",
//		To:   "919876543210",
//		ExtraParams: map[string]string{"attempt": "call-a/1"},
//		PCMO: piopiy.PCMO{piopiy.Stream(piopiy.StreamOptions{
//			WSURL:          "wss://bots.example.com/stream?call=call-a&token=...",
//			ListenMode:     piopiy.ListenCaller,
//			StreamOnAnswer: true,
//		})},
//	})
//	switch {
//	case err == nil:
//		// resp.RequestID names the call in every event and CDR.
//	case errors.Is(err, piopiy.ErrAmbiguous):
//		// The call may have been placed: settle with CDRsByRequestID or
//		// the webhooks before dialing again. Never retry blindly.
//	}
//
// Errors are *Error values whose Kind matches one sentinel (ErrAuthentication,
// ErrValidation, ErrNotFound, ErrRateLimited, ErrServer, ErrAmbiguous,
// ErrTransport, ErrUnexpected) through errors.Is. The app secret travels only
// inside request bodies: Credentials, Client and errors never print it.
package piopiy
