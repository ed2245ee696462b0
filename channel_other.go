//go:build !unix && !windows

package tether

import "os"

func channelPair() (*Channel, *os.File, error) { return nil, nil, ErrUnsupported }

func channelFromFD(int) (*Channel, error) { return nil, ErrUnsupported }
