// Replay data shared by the specs. Ids are unique within a file and files are
// long enough not to start over during a test (at 10-20 posts/s), so that a
// test never depends on how the page treats a post seen twice.

import { post, type Post } from './server';

/** `cats photo 1`, `dogs photo 2`, `cats photo 3`, ... */
export function catsAndDogs(count = 600): Post[] {
  const posts: Post[] = [];
  for (let i = 1; i <= count; i++) posts.push(post(i, `${i % 2 === 1 ? 'cats' : 'dogs'} photo ${i}`));
  return posts;
}

/** `<word> 1`, `<word> 2`, ... with ids 1, 2, ... */
export function numbered(word: string, count = 600): Post[] {
  const posts: Post[] = [];
  for (let i = 1; i <= count; i++) posts.push(post(i, `${word} ${i}`));
  return posts;
}

/**
 * Repeats `makers` in turn `rounds` times; each maker gets a unique id and
 * the round number.
 */
export function cycle(rounds: number, makers: ReadonlyArray<(id: number, round: number) => Post | string>): Array<Post | string> {
  const out: Array<Post | string> = [];
  let id = 1;
  for (let round = 1; round <= rounds; round++) {
    for (const make of makers) out.push(make(id++, round));
  }
  return out;
}

/** The number at the end of a post text such as `alpha 12`. */
export function trailingNumber(text: string): number {
  const m = /(\d+)\s*$/.exec(text);
  if (!m) throw new Error(`no number at the end of ${JSON.stringify(text)}`);
  return Number(m[1]);
}
