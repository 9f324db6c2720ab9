// lib/errors.ts: every error becomes words a shopper can read; raw error text never comes through.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApolloError } from '@apollo/client';
import { GraphQLError } from 'graphql';
import { kindMessage } from '../src/lib/errors';

const RAW = "HTTP fetch failed from 'cart': cannot connect: Connection refused";
const graphql = (code?: string) => new ApolloError({ graphQLErrors: [new GraphQLError(RAW, code ? { extensions: { code } } : {})] });

afterEach(() => vi.unstubAllGlobals());

describe('kindMessage', () => {
  it('names the region that is unavailable, whatever went wrong', () => {
    for (const error of [new ApolloError({ networkError: new Error(RAW) }), graphql('SUBREQUEST_HTTP_ERROR'), graphql(), new Error(RAW), 'a string']) {
      expect(kindMessage(error, 'Cart')).toBe('Cart is unavailable right now — try again.');
    }
    expect(kindMessage(new Error(RAW))).toBe('Something went wrong on our side — try again.');
  });

  it('says what to do for the codes a shopper can act on', () => {
    expect(kindMessage(graphql('UNAUTHENTICATED'), 'Cart')).toBe('Your session has ended — please sign in again.');
    expect(kindMessage(graphql('FORBIDDEN'), 'Cart')).toBe('This is not available to your account.');
    // A router's refusal arrives as an HTTP error whose body carries the code.
    const limited = new ApolloError({ networkError: Object.assign(new Error('429'), { result: { errors: [{ extensions: { code: 'RATE_LIMITED' } }] } }) });
    expect(kindMessage(limited, 'Cart')).toBe('Too many requests — wait a moment and try again.');
  });

  it('says the shopper is offline when the browser is', () => {
    vi.stubGlobal('navigator', { onLine: false });
    expect(kindMessage(new ApolloError({ networkError: new Error('Failed to fetch') }), 'Cart')).toBe('You are offline — try again when you are back online.');
  });

  it('never passes the raw text on', () => {
    for (const error of [graphql(), new Error(RAW), new ApolloError({ networkError: new Error(RAW) })]) {
      expect(kindMessage(error, 'Cart')).not.toContain('HTTP fetch failed');
    }
  });
});
