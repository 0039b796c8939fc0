// The RenderedChain objects renderIptables returns, built to be small: at 10k Services × 10
// endpoints there are ~110k chains and ~330k rules.
//
// A chain keeps its rules as one text ("-A …\n-A …\n"), which the serializer writes as it is. The
// `rules` array is made from that text on first read (split: each entry a V8 sliced string pointing
// into the text, ~32 bytes instead of a copy) and kept; a render that is only serialised (dry-run,
// trace, the benchmark) never pays for it. To everything outside, a chain looks like the plain
// object of types.ts: `rules` is an own enumerable property (an accessor, so JSON, spread, jest's
// equality and structuredClone all read it); `text` is own but not enumerable.
import type { ChainRole, RenderedChain } from '../types.js';

/** The rule lines of a chain text: substrings that point into the text (13+ characters), no copy. */
export function splitRuleText(text: string): string[] {
  if (text === '') return [];
  const rules = text.split('\n');
  rules.pop(); // the empty string after the last "\n"
  return rules;
}

let rulesAccessor: PropertyDescriptor;
let textIfUntouched: (chain: RenderedChain) => string | undefined;

abstract class ChainRecord {
  /** The `rules` array once read (or assigned); undefined while `text` alone says what they are. */
  #rules: string[] | undefined = undefined;

  static {
    // One shared getter/setter pair for every chain: V8 then keeps one hidden class for all of them
    // (per-object accessors would turn each chain into a slow dictionary object).
    rulesAccessor = {
      get(this: ChainRecord & RenderedChain): string[] {
        this.#rules ??= splitRuleText(this.text ?? '');
        return this.#rules;
      },
      set(this: ChainRecord & RenderedChain, rules: string[]): void {
        this.#rules = rules;
        this.text = undefined; // no longer known to match
      },
      enumerable: true,
      configurable: true,
    };
    textIfUntouched = (chain) =>
      chain instanceof ChainRecord && chain.#rules === undefined ? (chain as RenderedChain).text : undefined;
  }
}

/**
 * Adds rules (the accessor) and text (hidden) after the plain fields: the key order of JSON output
 * is name, role, owner, rules, as for a plain object. `text` is added as a normal field and then
 * hidden, which keeps it inside the object (defining it hidden at once would need a side array).
 */
function addRulesAndText(chain: RenderedChain): void {
  Object.defineProperty(chain, 'rules', rulesAccessor);
  chain.text = '';
  Object.defineProperty(chain, 'text', { enumerable: false });
}

/** A per-service chain (SVC, SVL, EXT, FW, SEP) with its owner. */
export class ServiceChainRecord extends ChainRecord implements RenderedChain {
  declare readonly name: string;
  declare readonly role: ChainRole;
  declare readonly owner: string;
  declare rules: string[];
  declare text?: string;

  constructor(name: string, role: ChainRole, owner: string) {
    super();
    this.name = name;
    this.role = role;
    this.owner = owner;
    addRulesAndText(this);
  }
}

/**
 * A static chain (no owner). A class of its own because V8 sizes a class's objects by the first few
 * it builds: static chains come first, and sharing a class would push service chains' `text` out of
 * the object (+40 bytes each).
 */
export class StaticChainRecord extends ChainRecord implements RenderedChain {
  declare readonly name: string;
  declare readonly role: ChainRole;
  declare rules: string[];
  declare text?: string;

  constructor(name: string, role: ChainRole) {
    super();
    this.name = name;
    this.role = role;
    addRulesAndText(this);
  }
}

/**
 * The chain's rule text when it is certain to say exactly what `rules` says: a rendered chain whose
 * rules were never read or assigned. Otherwise undefined (callers check or join `rules`).
 */
export function untouchedRuleText(chain: RenderedChain): string | undefined {
  return textIfUntouched(chain);
}

/**
 * The chain's rule text when the renderer made it and no one replaced the rules since (reading them
 * is fine: they are split from this text). A plan compares and writes chains by this text without
 * splitting them. Undefined for chains built elsewhere (callers join `rules`).
 */
export function trustedRuleText(chain: RenderedChain): string | undefined {
  return chain instanceof ChainRecord ? (chain as RenderedChain).text : undefined;
}
