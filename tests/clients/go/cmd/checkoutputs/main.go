// Reads border.alerts and border.deadletter from the start to their end with segmentio/kafka-go,
// and checks every field of every message against ../shared/CONTRACT.md ("Alerts", "Rejection").
// Prints a JSON summary: messages per alertname and per reject reason, and every problem found.
// Usage: checkoutputs BOOTSTRAP
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

type summary struct {
	Alerts      map[string]int `json:"alerts"`
	Deadletters map[string]int `json:"deadletters"`
	Problems    []string       `json:"problems"`
}

func main() {
	bootstrap := strings.Split(os.Args[1], ",")[0]
	out := summary{Alerts: map[string]int{}, Deadletters: map[string]int{}, Problems: []string{}}
	for _, topic := range []string{"border.alerts", "border.deadletter"} {
		err := readAll(bootstrap, topic, func(m kafka.Message) {
			where := fmt.Sprintf("%s/%d@%d", topic, m.Partition, m.Offset)
			var problems []string
			if topic == "border.alerts" {
				problems = checkAlert(m, out.Alerts)
			} else {
				problems = checkDeadletter(m.Value, out.Deadletters)
			}
			for _, p := range problems {
				out.Problems = append(out.Problems, where+": "+p)
			}
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "checkoutputs:", err)
			os.Exit(1)
		}
	}
	encoded, _ := json.Marshal(out)
	fmt.Println(string(encoded))
}

// readAll hands every message of every partition of a topic, from the first to the last offset
// that partition has now, to visit.
func readAll(bootstrap, topic string, visit func(kafka.Message)) error {
	conn, err := kafka.Dial("tcp", bootstrap)
	if err != nil {
		return err
	}
	partitions, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return err
	}
	for _, p := range partitions {
		leader, err := kafka.DialLeader(context.Background(), "tcp", bootstrap, topic, p.ID)
		if err != nil {
			return err
		}
		last, err := leader.ReadLastOffset()
		leader.Close()
		if err != nil {
			return err
		}
		reader := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap}, Topic: topic, Partition: p.ID, MaxWait: 100 * time.Millisecond})
		for offset := int64(0); offset < last; {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			m, err := reader.ReadMessage(ctx)
			cancel()
			if err != nil {
				reader.Close()
				return fmt.Errorf("%s/%d at %d: %w", topic, p.ID, offset, err)
			}
			visit(m)
			offset = m.Offset + 1
		}
		reader.Close()
	}
	return nil
}

func utc(v any) bool {
	s, ok := v.(string)
	if !ok || !strings.HasSuffix(s, "Z") {
		return false
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

func oneOf(v any, choices ...string) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	for _, c := range choices {
		if s == c {
			return true
		}
	}
	return false
}

func number(v any) bool { _, ok := v.(float64); return ok }

func integer(v any) bool { f, ok := v.(float64); return ok && f == float64(int64(f)) && f >= 0 }

func checkAlert(m kafka.Message, counts map[string]int) []string {
	var a map[string]any
	if err := json.Unmarshal(m.Value, &a); err != nil {
		return []string{"not a JSON object: " + err.Error()}
	}
	var problems []string
	need := func(ok bool, field string) {
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is %v", field, a[field]))
		}
	}
	name, _ := a["alertname"].(string)
	counts[name]++
	need(oneOf(a["alertname"], "QueueOverload", "QueueOverloadForecast", "ArrivalSurge"), "alertname")
	need(oneOf(a["severity"], "warning", "critical"), "severity")
	need(oneOf(a["status"], "firing", "resolved"), "status")
	need(oneOf(a["direction"], "in", "out"), "direction")
	cid, isString := a["checkpoint_id"].(string)
	need(isString && cid != "", "checkpoint_id")
	need(string(m.Key) == cid, "checkpoint_id (the message key is "+string(m.Key)+")")
	need(utc(a["starts_at"]), "starts_at")
	need(utc(a["fired_at"]), "fired_at")
	if a["status"] == "firing" {
		need(a["ends_at"] == nil, "ends_at")
	} else {
		need(utc(a["ends_at"]), "ends_at")
	}
	switch name {
	case "QueueOverload", "QueueOverloadForecast":
		need(a["wait_minutes"] == nil || number(a["wait_minutes"]), "wait_minutes")
		need(number(a["threshold_minutes"]), "threshold_minutes")
		need(integer(a["queue_length"]), "queue_length")
	case "ArrivalSurge":
		need(number(a["arrivals_per_hour"]), "arrivals_per_hour")
		need(number(a["baseline_per_hour"]), "baseline_per_hour")
		need(a["severity"] == "warning", "severity")
	}
	return problems
}

func checkDeadletter(value []byte, counts map[string]int) []string {
	var d map[string]any
	if err := json.Unmarshal(value, &d); err != nil {
		return []string{"not a JSON object: " + err.Error()}
	}
	var problems []string
	need := func(ok bool, field string) {
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is %v", field, d[field]))
		}
	}
	reason, _ := d["reason"].(string)
	counts[reason]++
	need(oneOf(d["reason"], "malformed", "invalid", "unknown_checkpoint", "duplicate"), "reason")
	_, isString := d["error"].(string)
	need(isString, "error")
	_, rawString := d["raw"].(string)
	need(rawString || d["raw"] == nil, "raw")
	need(integer(d["partition"]), "partition")
	need(integer(d["offset"]), "offset")
	return problems
}
