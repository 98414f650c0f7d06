package main

import (
	"context"
	"io"
	"strconv"
)

func runWeb(ctx context.Context, getenv func(string) string, stdout io.Writer) error { return nil }
func runDev(ctx context.Context, getenv func(string) string, stdout io.Writer) error { return nil }
func itoa(n int) string                                                              { return strconv.Itoa(n) }
