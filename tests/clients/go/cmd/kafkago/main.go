// Publishes a log to border.events with segmentio/kafka-go's Writer at its defaults (balancer:
// round-robin, whatever the key). Usage: kafkago BOOTSTRAP LOG
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/segmentio/kafka-go"

	clients "bordermon.test/clients"
)

func main() {
	lines, err := clients.ReadLines(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafka-go:", err)
		os.Exit(1)
	}
	writer := &kafka.Writer{
		Addr:  kafka.TCP(strings.Split(os.Args[1], ",")...),
		Topic: "border.events",
		// RequiredAcks and Balancer at their defaults; a batch per call, in order.
		BatchSize: 500,
	}
	messages := make([]kafka.Message, 0, len(lines))
	for _, line := range lines {
		messages = append(messages, kafka.Message{Key: line.Key, Value: line.Value})
	}
	for start := 0; start < len(messages); start += 500 {
		end := min(start+500, len(messages))
		if err := writer.WriteMessages(context.Background(), messages[start:end]...); err != nil {
			fmt.Fprintln(os.Stderr, "kafka-go:", err)
			os.Exit(1)
		}
	}
	if err := writer.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "kafka-go:", err)
		os.Exit(1)
	}
	fmt.Printf("kafka-go: published %d lines\n", len(lines))
}
