// The dialog package composes incrementally: the merge behind the previous state is taken over and only the
// publications added, modified or gone are applied. That must give exactly what merging every live publication
// afresh gives, whatever happens between two compositions (property test against a package that never reuses).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createDialogPackage } from '../../src/presence/packages/dialog.js';
import type { ComposedState, PublicationInput } from '../../src/presence/packages/types.js';
import type { ManualDialogState } from '../../src/presence/service.js';

const NS = 'urn:ietf:params:xml:ns:dialog-info';
const ENTITY = 'sip:201@pbx.example.com';
const CT = 'application/dialog-info+xml';
const STATES = ['trying', 'proceeding', 'early', 'confirmed', 'terminated'] as const;

type DialogSpec = { id: string; state: (typeof STATES)[number] };
const toBody = (ds: DialogSpec[]): Buffer => Buffer.from(`<dialog-info xmlns="${NS}" version="1" state="full" entity="${ENTITY}">`
  + ds.map((d) => `<dialog id="${d.id}" call-id="${d.id}@pbx" direction="recipient"><state>${d.state}</state></dialog>`).join('')
  + '</dialog-info>');

// Few ids, so publications often report the same dialog (newest wins) and removals meet shared ids.
const dialogs = fc.uniqueArray(fc.record({ id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), state: fc.constantFrom(...STATES) }),
  { selector: (d) => d.id, maxLength: 3 });
const op = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), dialogs, contentType: fc.constantFrom(CT, CT, CT, 'Application/Dialog-Info+XML; x=1', 'text/plain'), age: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('modify' as const), at: fc.nat(), dialogs }),
  fc.record({ kind: fc.constant('refresh' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('manual' as const), state: fc.option(fc.constantFrom<ManualDialogState>('early', 'confirmed', 'terminated'), { nil: null }) }),
  fc.record({ kind: fc.constant('same' as const) }),
);

describe('dialog: incremental composition equals a fresh merge (property)', () => {
  it('after any sequence of add, remove, modify, refresh and manual states', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 40 }), fc.integer({ min: 1, max: 6 }), (ops, maxDialogs) => {
      const incremental = createDialogPackage({ maxDialogs });
      const fresh = createDialogPackage({ maxDialogs });
      let pubs: PublicationInput[] = [];
      let manual: ManualDialogState | null = null;
      let clock = 100;
      let n = 0;
      let prevInc: ComposedState | undefined;
      let prevFresh: ComposedState | undefined;
      for (const o of ops) {
        clock++;
        if (o.kind === 'add') {
          const body = toBody(o.dialogs);
          incremental.validate(body, o.contentType);
          // An older updatedAt than the newest (clock skew between publishers, a restore) lands mid-order.
          pubs.push({ etag: `e${n++}`, contentType: o.contentType, body, updatedAt: clock - o.age });
        } else if (o.kind === 'remove' && pubs.length) {
          pubs.splice(o.at % pubs.length, 1);
        } else if (o.kind === 'modify' && pubs.length) {
          const p = pubs[o.at % pubs.length]!;
          pubs[o.at % pubs.length] = { ...p, etag: `e${n++}`, body: toBody(o.dialogs), updatedAt: clock };
        } else if (o.kind === 'refresh' && pubs.length) {
          // A refresh changes the entity-tag only (RFC 3903 §4.2): same body, same place.
          const i = o.at % pubs.length;
          pubs[i] = { ...pubs[i]!, etag: `e${n++}` };
        } else if (o.kind === 'manual') {
          manual = o.state;
        }
        // The hub hands over new input objects every time (the registry's records mapped), in arrival order.
        pubs = pubs.map((p) => ({ ...p }));
        const a = incremental.compose(pubs, manual, prevInc);
        // The fresh side gets a copy of its previous state, as read back from storage: nothing to reuse.
        const b = fresh.compose(pubs, manual, prevFresh === undefined ? undefined : structuredClone(prevFresh));
        expect(a).toEqual(b);
        expect(incremental.render(a, ENTITY).forVersion(1).toString()).toBe(fresh.render(b, ENTITY).forVersion(1).toString());
        prevInc = a;
        prevFresh = b;
      }
    }), { numRuns: 400 });
  });

  it('a state composed twice from the same previous gives the same answer both times', () => {
    const pkg = createDialogPackage();
    const one = { etag: 'e1', contentType: CT, body: toBody([{ id: 'a', state: 'confirmed' }]), updatedAt: 1 };
    const two = { etag: 'e2', contentType: CT, body: toBody([{ id: 'b', state: 'early' }]), updatedAt: 2 };
    const first = pkg.compose([one], null);
    const x = pkg.compose([one, two], null, first);
    const y = pkg.compose([two], null, first);
    expect((x.data as { dialogs: { id: string }[] }).dialogs.map((d) => d.id)).toEqual(['a', 'b']);
    expect((y.data as { dialogs: { id: string }[] }).dialogs.map((d) => d.id)).toEqual(['b']);
    const again = pkg.compose([one, two], null, first);
    expect(again).toEqual(x);
  });
});

describe('dialog: version splice', () => {
  it('version 0 is built once per state and equals the spliced form; other versions splice their digits', () => {
    const pkg = createDialogPackage();
    const r = pkg.render(pkg.idle(), ENTITY);
    const zero = r.forVersion(0);
    expect(r.forVersion(0)).toBe(zero);
    for (const v of [0, 1, 9, 10, 99, 12345, 4294967295, Number.MAX_SAFE_INTEGER]) {
      const text = (v === 0 ? zero : r.forVersion(v)).toString('utf8');
      expect(text).toBe(zero.toString('utf8').replace('version="0"', `version="${v}"`));
    }
    expect(() => r.forVersion(-1)).toThrow(RangeError);
    expect(() => r.forVersion(1.5)).toThrow(RangeError);
  });

  it('watchers at the same version share one body; a change of version builds the right one', () => {
    const pkg = createDialogPackage();
    const r = pkg.render(pkg.idle(), ENTITY);
    const seven = r.forVersion(7);
    expect(r.forVersion(7)).toBe(seven); // a fan-out of watchers at version 7: one Buffer
    const eight = r.forVersion(8);
    expect(eight.toString('utf8')).toContain('version="8"');
    expect(r.forVersion(7).toString('utf8')).toContain('version="7"');
    expect(seven.toString('utf8')).toContain('version="7"'); // the shared one was not written over
    expect(seven.buffer.byteLength).toBe(seven.length); // own memory: it does not pin a pooled 8 KiB slab
  });
});
