/** `tu-agent logs`: where the logs are and how to read them (the agent logs JSON lines to journald via stdout). */
export function logsHints(): string[] {
  return [
    'The agent writes one JSON object per line to stdout; under systemd they go to the journal.',
    '  journalctl -u tu-agent -f -o cat                      follow',
    '  journalctl -u tu-agent -b -o cat | grep \'"level":50\'  errors since boot (pino levels: 40 warn, 50 error, 60 fatal)',
    '  journalctl -u tu-agent --since "1 hour ago" -o cat    the last hour',
    '  journalctl -u tu-agent -b -o cat | tu-agent stack      the same, with stack traces mapped from the bundle to the sources',
    'Outside systemd (tu-agent run in a shell), the same lines are on the terminal.',
  ];
}
