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

/** `view,upload` → roles; refused with the bad name otherwise. */
export function parseRoles(list: string): Role[] {
  const roles = list.split(',').map((r) => r.trim()).filter(Boolean);
  const bad = roles.find((r) => !(ROLES as readonly string[]).includes(r));
  if (bad !== undefined || roles.length === 0) throw new Error(`unknown role ${bad ?? '(none)'}; one or more of ${ROLES.join(', ')}, comma-separated`);
  return roles as Role[];
}
