/**
 * What a technician token allows (agent/README.md, Technician access). Each agent route names
 * the one role it needs (agent/src/http/auth/access.ts); a token's roles grant that role and
 * what it implies. Browser-safe: the technician UI shows these too.
 */
export const ROLES = ['view', 'upload', 'register', 'teach'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Every role that acts on the gateway also lets its holder see what it did: an upload is
 * worthless without its result, a registration without the registered machine, a label
 * without the analysis it corrects. `view` alone changes nothing.
 */
const IMPLIES: Record<Role, readonly Role[]> = {
  view: [],
  upload: ['view'],
  register: ['view'],
  teach: ['view'],
};

/** The roles a token's `roles` claim grants, implications included. */
export function grantedRoles(claimed: readonly Role[]): Set<Role> {
  const out = new Set<Role>();
  for (const r of claimed) {
    out.add(r);
    for (const i of IMPLIES[r]) out.add(i);
  }
  return out;
}

/** What each role lets a technician do, for the sign-in prompt and the token commands' help. */
export const ROLE_MEANING: Record<Role, string> = {
  view: 'see analyses, labels, the registered machine, the live feed and the full health',
  upload: 'upload photos for analysis (and view)',
  register: 'register the machine and its reference photos (and view)',
  teach: 'confirm or correct recognised machine types (and view)',
};

/**
 * `view,upload` → roles (the --role of `tu-agent token` and `relay technicians token`); refused
 * with the bad name otherwise. An empty element (`view,,upload`, `view,`) is refused too, as an
 * empty --role is (agent/src/cli/args.ts): dropped, it hid a list built wrong, e.g. from an unset variable.
 */
export function parseRoles(list: string): Role[] {
  const roles = list.split(',').map((r) => r.trim());
  if (roles.some((r) => !r)) throw new Error(`--role ${JSON.stringify(list)} has an empty role; one or more of ${ROLES.join(', ')}, comma-separated, none empty`);
  const bad = roles.find((r) => !(ROLES as readonly string[]).includes(r));
  if (bad !== undefined) throw new Error(`unknown role ${bad}; one or more of ${ROLES.join(', ')}, comma-separated`);
  return roles as Role[];
}
