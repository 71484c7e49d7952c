package sipp_test

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipp"
)

// SIPp answers with 486 and a second SIPp sends it three MESSAGEs.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	busy, err := sipp.StartAnswerer(ctx, sipp.AnswerOptions{Transport: sipp.TCP, Code: 486})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer busy.Stop()
	st, err := sipp.SendMessages(ctx, sipp.Options{Target: busy.Addr, Transport: sipp.TCP,
		From: "sip:bob@sip.test", To: "sip:alice@sip.test", Count: 3, Body: "hello"})
	if err != nil {
		fmt.Println(err)
		return
	}
	rc, err := busy.WaitReceived(ctx, 3)
	fmt.Println(st.Failed, st.Codes[486], len(rc.CallIDs), err)
}
