package server

import (
	"fmt"
	"os"

	"go.uber.org/zap"
)

// raftLogger adapts zap to raft's Logger interface.
type raftLogger struct{ s *zap.SugaredLogger }

func newRaftLogger(lg *zap.Logger) *raftLogger {
	return &raftLogger{s: lg.Named("raft").WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

func (l *raftLogger) Debug(v ...any)                 { l.s.Debug(v...) }
func (l *raftLogger) Debugf(format string, v ...any) { l.s.Debugf(format, v...) }
func (l *raftLogger) Info(v ...any)                  { l.s.Info(v...) }
func (l *raftLogger) Infof(format string, v ...any)  { l.s.Infof(format, v...) }
func (l *raftLogger) Warning(v ...any)               { l.s.Warn(v...) }
func (l *raftLogger) Warningf(format string, v ...any) {
	l.s.Warnf(format, v...)
}
func (l *raftLogger) Error(v ...any)                 { l.s.Error(v...) }
func (l *raftLogger) Errorf(format string, v ...any) { l.s.Errorf(format, v...) }
func (l *raftLogger) Fatal(v ...any) {
	l.s.Error(v...)
	os.Exit(1)
}
func (l *raftLogger) Fatalf(format string, v ...any) {
	l.s.Errorf(format, v...)
	os.Exit(1)
}
func (l *raftLogger) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (l *raftLogger) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
