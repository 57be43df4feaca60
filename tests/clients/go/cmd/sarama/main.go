// Publishes a log to border.events with IBM/sarama at its defaults (hash partitioner: FNV-1a of
// the key; random without one). Usage: sarama BOOTSTRAP LOG
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/IBM/sarama"

	clients "bordermon.test/clients"
)

func main() {
	lines, err := clients.ReadLines(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "sarama:", err)
		os.Exit(1)
	}
	config := sarama.NewConfig()
	config.Producer.Return.Successes = true // a SyncProducer needs them; nothing else changed
	producer, err := sarama.NewSyncProducer(strings.Split(os.Args[1], ","), config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sarama:", err)
		os.Exit(1)
	}
	messages := make([]*sarama.ProducerMessage, 0, len(lines))
	for _, line := range lines {
		message := &sarama.ProducerMessage{Topic: "border.events", Value: sarama.ByteEncoder(line.Value)}
		if line.Key != nil {
			message.Key = sarama.ByteEncoder(line.Key)
		}
		messages = append(messages, message)
	}
	for start := 0; start < len(messages); start += 500 {
		end := min(start+500, len(messages))
		if err := producer.SendMessages(messages[start:end]); err != nil {
			fmt.Fprintln(os.Stderr, "sarama:", err)
			os.Exit(1)
		}
	}
	if err := producer.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "sarama:", err)
		os.Exit(1)
	}
	fmt.Printf("sarama: published %d lines\n", len(lines))
}
